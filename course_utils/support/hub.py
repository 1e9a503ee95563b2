"""CIFAR-10 from the Hugging Face Hub mirror ``uoft-cs/cifar10``, used only once it has been
checked against the official release.

The official server has been serving its tarball at tens of kB/s (an hour for 170 MB); the
Hub serves the same 60,000 images as two Parquet files of lossless PNGs, in seconds. The
mirror is not trusted: ``verify`` compares each split with facts of the official python
release (``OFFICIAL_FACTS``: the sha256 of all labels in the release's order, the label
counts, the exact sha256 of the first 761 images of every batch, and the digests and labels
of the first 100 images of every batch) before ``cifar10()`` uses it, and again each time its
cache is read. A copy whose batches come in another order is put back in the release's
order; a copy in another order altogether is accepted only if every known image is in it
with its label, and ``cifar10()`` says so; anything else is refused.

``huggingface_hub`` and ``pyarrow`` are imported only here and only when a copy is
downloaded or decoded, so the rest of the course imports and trains without them.
``course_utils.data.cifar10(split, source="hub")`` names this source; see data/README.md.
This module imports nothing of the package: ``course_utils.data`` passes in the data folder,
the reachability check and the cache writer, wraps the arrays in an ``ImageData`` and raises
this module's errors as its own (``HubRefusedError`` as ``DataCorruptedError``...).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_png

HUB_REPO = "uoft-cs/cifar10"
# The revision every download asks for. "main" follows the repository as it changes; once
# someone online looks up its current commit id (the dataset page's "Files and versions"
# history), set the full 40-hex id here so the files can never change underneath. Integrity
# does not rest on this: every copy is verified against OFFICIAL_FACTS before it is used.
HUB_REVISION = "main"
# The Parquet files of the dataset's "plain_text" configuration on its main branch, per its
# dataset card: columns img (a struct of the PNG bytes and a path) and label (0-9, in
# CIFAR-10's class order).
HUB_FILES: Mapping[str, str] = {
    "train": "plain_text/train-00000-of-00001.parquet",
    "test": "plain_text/test-00000-of-00001.parquet",
}
HUB_MEGABYTES: Mapping[str, int] = {"train": 120, "test": 24}
HUB_ENDPOINT = "https://huggingface.co"  # HF_ENDPOINT overrides it, as in huggingface_hub
HUB_DOWNLOAD_FOLDER = "huggingface"  # in the data folder: huggingface_hub's cache of the files
HUB_ETAG_TIMEOUT_S = 10.0  # longest wait for the Hub to say which file a revision holds
HUB_CACHE_VERSION = 1  # part of every Hub cache's identity: bump to rebuild them all
EXACT_IMAGES = 761  # images at the start of each batch whose exact digest is known
# The official release's batch files of each split (as support.sources names them).
SPLIT_BATCHES: Mapping[str, tuple[str, ...]] = {
    "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
    "test": ("test_batch",),
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class HubUnavailableError(RuntimeError):
    """The mirror's file cannot be had: no cache and no download, the packages missing, a
    wrong revision (``course_utils.data`` raises it as ``DataNotFoundError``)."""


class HubUnreachableError(HubUnavailableError):
    """The Hub cannot be reached, or ``HF_HUB_OFFLINE`` rules it out (as
    ``SourceUnreachableError``)."""


class HubRefusedError(HubUnavailableError):
    """A copy refused: not in the Hub's schema, or not the official release (as
    ``DataCorruptedError``)."""


# --------------------------------------------------------------------------- the release's facts


@dataclass(frozen=True)
class BatchFacts:
    """What is known of one batch file of the official release: the sha256 of its labels
    (int64 little-endian), its label counts, the sha256 of its first ``exact_images`` images
    (uint8 [n, 3, 32, 32], C order), and the labels and sha256 digests (first 16 hex digits)
    of its first images, for checks that do not rely on order."""

    labels_sha256: str
    label_counts: tuple[int, ...]
    first_images_sha256: str
    known_labels: tuple[int, ...]
    known_image_sha256: tuple[str, ...]


@dataclass(frozen=True)
class ReleaseFacts:
    """Facts of a release: its batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``),
    the sha256 of each split's labels in the release's order (train: the five batches
    concatenated), the images per batch and how many images ``first_images_sha256`` covers."""

    batches: Mapping[str, BatchFacts]
    train_labels_sha256: str
    test_labels_sha256: str
    batch_size: int = 10_000
    exact_images: int = EXACT_IMAGES


def _digits(text: str) -> tuple[int, ...]:
    return tuple(int(digit) for digit in text)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Computed from exact fragments of the official python release (cifar-10-python.tar.gz, md5
# c58f30108f718f92721af3b95e74349a): every label, and the first 761 images of each batch.
OFFICIAL_FACTS = ReleaseFacts(
    train_labels_sha256="f5cfe00b0f00968c0cc5ff3b1d2de51b10e33efa277c2986f4e0fa63e58c9f4f",
    test_labels_sha256="cbb7365de8ed11f05cc4c3a1e7f78144127c5e851efd83762fb18202461230bb",
    batches={
        "data_batch_1": BatchFacts(
            labels_sha256="66145c918fed3a0358c4001da734fbc15cb584ddf34c823fa524e6b9c81542b7",
            label_counts=(1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981),
            first_images_sha256="d6afdbe962d1bb04c33c8f5a6913080b1bcbb4b88a494bec240a55bac912be44",
            known_labels=_digits(
                "69941127834772999326436626354009134037335227111220"
                "95792252431182114978596731903135457747942380161141"
            ),
            known_image_sha256=_words(
                "e052de7deb775f78 4f33c2fba21752ac a1ac21a135ed4e9c c952347b33c1f013 "
                "e3476dc9938705d2 360759dbd9495c6a 6ef454bc21ed42ff 2d66d962e259f3ac "
                "62b3e606cd58e25c 03380462bd84f233 369d47c6cbba0155 a68a4826ba7c6a03 "
                "b0327b1fe9099904 9b57e5a7cd783963 28fd7aac125f91b4 13ac30b7c2114114 "
                "728494255f67782f 25375f4e21068364 2dcf7a4bb6605a29 3ce9d3490089873d "
                "548e13c947432735 588102f7b0cc9a7e 5626c5ad1dd84875 91a65634b89bcfad "
                "4f8ed968f4f22d77 c4f959327a264d8f a09d6bdfdc82f40e 42876894841fe77d "
                "ca2ea099549e7917 04150281f7c48086 bd618dd5059dadfb 63363c21d8ed8182 "
                "7117e3e399b00ec4 ac6625d6a8096a96 ba2d8008ee746cae 85531b0736c04ac6 "
                "00e3bf45bbcf3b36 1cfc760103e45607 d9194c10ad4adaeb e5135a833b35c736 "
                "2674a867de896455 da0d70ad1dd4c89e 6eb1e66f48f8156b 10186101ed518ddc "
                "04006277665069bb 6b3d712870f5f41a beebbf433b5f9554 7ac17b1e73ae52f4 "
                "74942e3889221fcf 5d395381457ce808 9d69bb541c99b979 7cb5889238f9b1f2 "
                "4e806701816adf1f 4a35593019842ee8 b541383d57faa41f 74def1670f431b52 "
                "7af599d0443a41bb a6815396961d031d 86c631d7d812833b 0e0878a8913d5b13 "
                "a718fb24e92a1b79 9b19481b3828ab74 52378e8c0882f3fd 3de86b501087bb1b "
                "6c89ad93ebe56089 9e51ed692e9b13a4 bda8121dee94bb69 8de4e5b8d7837520 "
                "e8d67fdfd8e91589 68ea0a38065ba851 817bacf862093856 50781e4965ff67cb "
                "8a8c6ae644da4ea4 8f3d26853c2ee0a0 e8ec401b21861d5e 313e454b329c91a1 "
                "7568f9438eee54ea 12c93f98b15bb582 6e37b8e2c4a61850 c7a28a3fd251fe0d "
                "5f61537d769ee2db c7311cbd73849415 bc8332793737ff60 6580bf24e8cfd50c "
                "472ebe638a1c8aac deec679715455b58 8f7b4814363fe4ea b067b7e494da02bc "
                "1259c98f49c0fb04 40311ab12d4d6e7b acb9cb51b8d80deb 928fd707557d8be4 "
                "475d3e41454754c9 86fe7237f2d8434d 7cc36a37bcf8a192 e433b57fbb234ec1 "
                "a73bbdd3a486bc0e 92459b0f8ab7017c b521041d558d6083 93e955f7aa999542"
            ),
        ),
        "data_batch_2": BatchFacts(
            labels_sha256="1074c604720c88e1f4d8408e1995944e9bc65877af3e8c5503da69209d57286b",
            label_counts=(984, 1007, 1010, 995, 1010, 988, 1008, 1026, 987, 985),
            first_images_sha256="5adaa35339f3a1f898008c1d3de99b9fef9df00607c3c0cb87015895456ac33b",
            known_labels=_digits(
                "16688346060366548326031406627690457167917780374731"
                "04661492645046083488395719479197527348821592788688"
            ),
            known_image_sha256=_words(
                "c3105ffde9cf858f f95083f040f9d498 6eed9d9f0d0d532d 217d6fe494fe477d "
                "55bb812eac6e5421 dc0e0145da71d765 5da43f8191e4df75 cb6b93e2e7e1d37e "
                "986adb8bc7d869b5 43eeb732e1d8a472 a2b4feca939241f4 43fc62488d99f1ed "
                "c8027bab3f70ccdc d1ee9f5af565c106 98c9eed57ac0b9c3 e6dde79d8ff01db2 "
                "912c66987511c39d 4169609676096088 0bc4c0d746363d95 de101bd1649ec00c "
                "d996e92cda7c23ac dc7ada8b302783d8 68e459dce9d1d4c1 679516479ccdb293 "
                "2ad9085c873a1077 63496bf5b930a76c c8f162bc48ec742c 5b99d62262ae0f80 "
                "b5e171fdd3d7e0da aa3f08704bc4c2e1 b54cae2552e41c33 3284956f4dfc3800 "
                "ba243ebb709eea77 b509faf08686242e b2870ae744f1f3fa d5280f5f30be7ebd "
                "319e382c5a44343d fbe50411d7d68c7e 216fba629ff75af1 9f4a0e666007b097 "
                "b5fcc584d36eb035 ac9380d375fedf30 5eee8163c25e369c 2c4b77a1374024c9 "
                "e79f472ae57d69c0 6836bc82e1573d6c 1985def833d06555 d484229f19d06171 "
                "9de61567d23921ce 0f6de69c1f86fbb5 f8279cdef43158a7 a2c0d5cff262e347 "
                "3b598704e847b75d f82d016bfa1f7514 3a411df36470aa64 8ab4c0b73097719e "
                "eaa2a58ecfab6c7b a69f7737212282ec 8562da872640e484 dc1d9c1a01e078c7 "
                "8d25599caa51ae14 1357ff0c658c5dc4 3b1be9143d8e4c51 a6f2e407b5ba8575 "
                "91d945d7828c5a26 7c79fb4893f2818e f4a6738df58ec44b f9b86d1ebfea24b8 "
                "1becd590c8d45481 016e3798503b041f c45e0ea843ad46c4 6aef98308d3dcae3 "
                "9be8154cfa58c0c6 b6b2e649ec63f397 ea15e35bdf21c03b a641fd7963f6bbbd "
                "f07ef835b519f013 82a23c055249a663 ce33ff203528aed0 b45b6fc23c0151f7 "
                "7d13d403e4b887d1 37eb86ddac0b611e a62a36200d0c9aee 64e956337c43601c "
                "6163f7623c6c6779 5f171dbc9c74eb98 a6fab83c0af6dce1 edf4aa45e529990c "
                "803d549a64b9ff79 e9b7a29c23b21b1e 5c578de0865295b2 a3370d6e1b3acaf0 "
                "aafb5bb3b9edb83e 5353a2e78020c9cd 78545e6f4a69021f 3d57da52b6a4647a "
                "9bd9da9f6ee755e9 c056da24bf2308e5 67d55fd4fc04d96f dab9d032cf14020f"
            ),
        ),
        "data_batch_3": BatchFacts(
            labels_sha256="fe1021a9820682f7eb5cc7f65ff3d015d8a33876df6dd7787404f0fa8cf5937f",
            label_counts=(994, 1042, 965, 997, 990, 1029, 978, 1015, 961, 1029),
            first_images_sha256="3359bccfaeb2cf5cf8ce8014202de73ec68a7568b7a9f9302e8787276271e993",
            known_labels=_digits(
                "85069283627469007372566096867275333065208815404124"
                "32854211354277825399067215527138855405185356794067"
            ),
            known_image_sha256=_words(
                "d9bd24b8ef41bb27 0b6cc14c50f903f5 908abed59ea24fd7 4dbe4bbd782ab15e "
                "dd6321cc8d40d848 e3be49de96934b70 aef11b518c31e01b 00fd3b728d689fff "
                "efad6e5999196621 a1479e15ccc3d82c 9134133af92d294a 4636ccb61874e3ce "
                "3fe754a531ebae22 b289116dc90b279b 37874ac1cc7bcf68 bb3a52c4a52b0ab5 "
                "6823c26810c034b0 e54f70db76cfb6a3 e06d0091cc1aafcd 2bc2576694193af1 "
                "2b74bd0863fea07f 93d813fc46f34e3d 34c1a5432a5441ce e734c22e3d776d60 "
                "0804a8e8241457ef 62295099a808b429 ec90ba1242d24684 ea4dc77299f0cfd8 "
                "66045d7817353cd7 8843f844d926b468 7b77dcf96616c9e1 9b84e6cd63da0343 "
                "f4976e4f3b00d956 545257ab0309b851 cb6347d5e3e81d3e bfa4d55c4f967f13 "
                "d45a437cfed4943f 0e7462bc153a7f0a d8a5da4d331daa5b a2fa977aacfbad85 "
                "40be8df47cf6aaa0 793b9ff17a910503 36740c71b34952eb 2998041c244b0abc "
                "f8b3ea1b97a2b8b4 10402facac5c0bd7 6bf89369d449bf31 e3882948a6d3cda7 "
                "d39d6c771e4ca31d 285b0124bb622524 eca861dd38c0cdc1 e31de61c3ae4e851 "
                "245bae3a552ef7d2 00fae4586fd689cb 8bb4379fc7572b74 cf4d7d5bb70aadb8 "
                "4d66d8276052f2dd 86a10c95910baa6b 54d54ae45522d934 84f8507bae2cea1a "
                "50e6656a1a3b0025 1991de3f595082e2 f2f30cc2aedf3f8e 7ee5117b141d7e61 "
                "eeeb349a0291eb20 531494629606349f 0276c39d6001c5fb 897ab12317061c89 "
                "c635e37af6830224 f5af1134efd25e08 45ab375f83ae18d8 69cd0a4e2341a74b "
                "b0726e3c7aca4671 279ddea998bf9caf 2afda22c6471cf86 1986003c7c0a5663 "
                "743b4e3c2115099a d5365479f20cc0f8 16627548d5f30dcd 66c13241d869d28b "
                "4c6e82f32e9d782d 3a6d62b558b2d6aa 97265b9207aefa4d 0c385bccbcdfc19b "
                "4c66f9e23df26872 fcf789b9186b5eef b76e2e483164c8f5 43f3f7b161cad725 "
                "3fe5bbaaef6f9dfd 41d34bbb5f381070 f9f45807f9409e6b 50b583b2af4beb95 "
                "cfcfbf8e763f66d6 f0d83b668c927260 f90243882a068bf9 34ca32900c94efde "
                "42328bad3aa0bcc3 fe120be24ab6dc46 d5b254d8bd9017ae cde116ec16e18dfa"
            ),
        ),
        "data_batch_4": BatchFacts(
            labels_sha256="1599745ad42ec41be72e2f3f716b65bac89321693690656a125b1ea3ca3feeea",
            label_counts=(1003, 963, 1041, 976, 1004, 1021, 1004, 981, 1024, 983),
            first_images_sha256="10ccd38584886ab54ebe13108563e41bc9ac9a99a9b23a33d70ba1e326a583aa",
            known_labels=_digits(
                "06027212415663135581423212895076768874912659425101"
                "19075396333415977290285967840492710518165970452355"
            ),
            known_image_sha256=_words(
                "c154e45123bdb905 eea4d7e24a4369f3 80533b1b8edc67df 674133026ae7ad19 "
                "4e6d0e01d9c3bec0 5751e108ce6ebf43 8af225b08ca741fb d6a91a27f7a8f562 "
                "0de4ecf69f6603c8 75310c7b766a31f3 8fd465c511eac60b 4fff0baa86d7ade9 "
                "b22759e4181145e8 b3157cc5d71fc7b9 dfdff8b42ce4ffc7 78c6533860850a5d "
                "e180d4458778b7b3 a93bc9f2dc7f70c0 0fa0cc7a01d69ae3 6a7bdeaf97746a09 "
                "fe1f1f3fc78a2fdf ed37df81908148e6 00e46e2535684755 343545394279470d "
                "138fea103ed5b838 aeef128e04996ce9 632377dd04cecf4e 606418eb02e3067b "
                "b877fad938d12f0c 4f61e491af2b2f96 1d3c551ee006c628 2012176003b641ac "
                "92098ceff3c5e340 8d7b8bc5d5acd3d9 f4a0553a7b0b0cd8 4f3893f84785b048 "
                "dde1471a7c4bc019 89934ac63279a64a cb0ef710d31894b7 85af78e13bb69692 "
                "2d3af41c51cb9ad0 d7bed624d514e110 2010bb76d5311689 b113532c89ab7da4 "
                "36b03f1cc73b3e98 434f7af0f0288aa6 f952c0961e4b0c1a 00c178944a944a13 "
                "68190050ba9a15b3 0406c4387eb2c08e 63220e4ba08ab199 63581ca429a252ca "
                "c981b5b5ed7888bd dfaa385bee6fda28 cc75d45e02c8d49e de9b1098a38fc0e6 "
                "471a393327728b1f 568e4c68899ed2d8 5367b10efc28a3c9 64286096dc570637 "
                "60763800f6706ff2 58ed17d682bd2fa8 95067818c3b3eafb fbd5a8a0e7e7a3cb "
                "e050a0ace75c77f0 c3d5d90379c1cc24 dc6916c433fc5364 76e7f5b076666833 "
                "ce2179b6b450d851 e00ec9e5a3b4dc4e cde9d8af2b9eb096 cf1ee97d107318f1 "
                "093dd199cf09c269 58f19beb11bdaab7 0bc35dacb961f07f 790c1748a65c1350 "
                "47fe5e32af9ec504 57cee4e408d4be82 b347ce457558f1b0 a78a0ab1ae863943 "
                "ffefe86a7de33d42 57339f8438561c8f 6953bfa660ea2f03 1e0253b3ec9056de "
                "b91cc4853a3385df 0552d218c65ab4aa 8dc5e3baeca187d7 28c837045b2cab74 "
                "57d886b335029980 dfdeecb6deab6a38 7f0f1ff37129210d 0aed5a448a7d4c1e "
                "4b3fa8aa3e9e3cc2 cacb3b0e4170a7ff 79a1f84e093d2ada 248b4c830f64eda2 "
                "0f0b7854be2ab306 05970edf0ebd8aef c62523b0a7c16283 f8ec29f3fb6ddd47"
            ),
        ),
        "data_batch_5": BatchFacts(
            labels_sha256="a3a7f0cf6cafd5b2d4610fd467bd87987a0a9ff93958b860a567c925a00ad56d",
            label_counts=(1014, 1014, 952, 1016, 997, 1025, 980, 977, 1003, 1022),
            first_images_sha256="de2171076f2d1ce8466782016104df241a6aae7e375ed69eb1311f46c478a7bb",
            known_labels=_digits(
                "18515743827201596208270417744996241649669699571682"
                "95953713391789743495849361143991992432471518636344"
            ),
            known_image_sha256=_words(
                "2354b2d1bc42fd81 66cc1ed4a9f87dba b034c5b8267a2dd3 02f2aef6a59e67ad "
                "6b10b1eaa2f2600e b5de126baf615447 e29f2e62f24ea015 3498e804bff50621 "
                "604a91d59d179b87 e31e16f13e4d1003 d3805a46477d207f 82b8a8faef31b5cc "
                "45235268aa602f22 a94714ed77c3f595 6c89a15755a7fa0e f42ebc6324d14120 "
                "2205fb56646d44b2 a0d3d94b7cea8ce9 adaf7ed50d132c66 9c0b0c2b3af47bcb "
                "83792003c5e95bd2 595c681016e21d74 7e89a274155f216c 717699031aec095d "
                "6afaab7cf1abc4d2 a54b3377f2bac4be e6a28240c1a8bb26 6633da24d1055f46 "
                "438c09ed625dfb36 941199c29a2ce28d 72a0ff9c83ff6c16 570ed001ff7d39cd "
                "734223be21184b60 8edfcaa1e6385f49 5ceabee401838e62 c3df75b0fe7a9f7e "
                "2d14367f8d6aa79c 3d6b6e617c893507 5960dff07eb61eaf 73ca7bf23886e11a "
                "3c7f1e834728381c 64810d41661a88f3 241a70d319ece8fa 9f22975c3ee5481f "
                "03b0bfc6d9a82aed 1d0db2e8c2c073ea c4b42105b7dfcfaf eb069804585d19bf "
                "f67e9ede89851ef5 a09c03ced1576f0b c65c0be0f2853f0f 39951a74513991ee "
                "55c82827b671d728 aef79c797472ed08 ad6bed6cfc445f1c 56e15c514f0cfca3 "
                "ec44854f83f3013c a8a88c1ed4a57493 7b3db45c007147f4 933b62c3c759cbc8 "
                "9dcd7319d0f432b9 e8be459ce6e48afb aa741a151c50597c 195861036a057bc1 "
                "66f7c6b502f96bdb 7f6fb6fa61fa9170 bff13a997762d16f 79be3070b8693bea "
                "3dc7ae6fb36b1e8e fca12bc2941e8e6d 5eccb42f3eb78a3c cdf503365e593d5e "
                "8e4a92cc19115bdc 6db0756cec2d0ff2 716af211707078d5 d341fc473bd516f8 "
                "22ea918fe815895d c5df9099c1f76b9f 9e76986e74d33739 c8ba0c5979d554d9 "
                "cdf01f8a8134191a d620d7a2a72de9d0 12ca5c8d01efc3ac d110799da786b24b "
                "0673c6fbbe2539ac e5cb3c2bd9261e75 3f12117263634345 8d2bb7960f1c2f85 "
                "8b006c6f306cc7e7 f7f03440cb9fff28 f417f4ae76e52f40 dc3f86ee35bc22d6 "
                "1f61153d22d909e3 7e920be5dc6cf573 c16aa17c91b37ebf fef39e5ba80fa3a7 "
                "6a09f92b139820af ef9d99523dd283da c933e162991c0b82 2c3cece63d5b71e3"
            ),
        ),
        "test_batch": BatchFacts(
            labels_sha256="cbb7365de8ed11f05cc4c3a1e7f78144127c5e851efd83762fb18202461230bb",
            label_counts=(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000),
            first_images_sha256="942e0418f6a266e52c863922d5535b404ccbb5593011bbb9540ca3f724372fcc",
            known_labels=_digits(
                "38806616310957985786704952409665459241954656093976"
                "98038877467363621237268802933881172527890386466007"
            ),
            known_image_sha256=_words(
                "73eefb0106f2b7a2 358144e2cd4b907c ccc897affa1b0755 95b44c10c5da5ac7 "
                "c6867c33e370ad61 90c9953b54ad2321 0df972248360a13a eea7e1c027978679 "
                "dbd13a00b2e7a431 a140d09388fc27f4 44afba83f3fa3cf7 f808e90aebb51374 "
                "a6c2095340953a3f 9cc094972decbd3f dae5a7e98a91988a 803e30fad6d7f51c "
                "cf86779780a2bc92 0e2f2dffc4c177f9 bbed9fa887e32fd8 ca82c92cadcff2d1 "
                "d476e0826d83c52f 66b24d5da6b6ddd2 21376b8c21f0474d f459e4d974b3b92e "
                "a20e44170ab443bc 7cc9aed66c1c75ba 52aa92a5d0dc222e cc091333ce6e9027 "
                "c8974de720db1af6 274b45648cc568db c62f7cacd8962d0e db25c9b8936d659e "
                "7dfea50406fbbe70 6b5ec39aa221239d 99f8a6003501af48 680d65e7dfd350c4 "
                "f761a0e56f03c686 7b4bb914d8e6f211 61d615ab7d6c25d1 c4b1e66020097e59 "
                "f48187040706c93e 8cd1f3fff627779c c0e667408d948f25 e474098ae2aef5d0 "
                "facc92823e24d012 76228a43e9f9b6e2 d099dfe94a2ba050 dd827f751aacdcfa "
                "209674b7c3478a1c e9f521f6ba014917 5852b7ee3f835942 524437425b2dc597 "
                "d80ceceee82aeff5 06ccfcb32260c6c1 28c29c5999a4cb19 8ffeae44fe661ec3 "
                "738fe3044f7f3aa4 7b44d0d37a89dc55 c718703fee1e3cb5 74f79099935a1bb2 "
                "ec3a64b30f5d8506 5465906c2e6cfa29 49e950a02dc57d41 5e2883e84c82045e "
                "816c8f6b99ec14ed 18bed08da0700406 c2515b0d99d45941 e84d478b3c83160a "
                "d0bd96183062e910 78de574d52b622b3 489f188f47bc0886 6059600bdb729285 "
                "22ebf5ebafba30ac e3d792e7c0a07e81 6062ffd62d74cec9 6f4c56df200a55e9 "
                "a53d676aa8515a99 5edd4b6da4eec710 0d33dbabf24f09f2 ab70ee546c15709a "
                "bc7c515369fd5c5e a33dc98782f4b4af a6d8e9f884b4205a 45ef222b7b808d3c "
                "52068e6f98c250ef 6015b5db1aca0c1f dc4a59279914599f 0343fcba9dd3a682 "
                "1b39c26c8646c507 4727ca91f17671e7 98d797fe224ef554 102a98edc7c2bf6d "
                "f1773355cc185cb9 7f6e126e8ac7afce 20b9c6e1c387a1de fe4f4014ac8a541e "
                "f86b517fa68254b4 f00b17d5e67ede85 355a2345ac3a5070 6185612fa2cb648e"
            ),
        ),
    },
)


def release_facts(
    batches: Mapping[str, tuple[np.ndarray, np.ndarray]],
    exact_images: int = EXACT_IMAGES,
    known_images: int = 100,
) -> ReleaseFacts:
    """The facts ``verify`` checks, computed from a release's batches: name -> (images uint8
    [n, 3, 32, 32], labels int64 [n]), every batch of the same size. ``OFFICIAL_FACTS`` is
    this of the official release; tests compute it from small fake releases."""
    sizes = {len(labels) for _, labels in batches.values()}
    if len(sizes) != 1:
        raise ValueError(f"every batch must hold as many images, got sizes {sorted(sizes)}.")
    facts = {
        name: BatchFacts(
            labels_sha256=_labels_sha256(labels),
            label_counts=tuple(np.bincount(labels, minlength=10).tolist()),
            first_images_sha256=_sha256(images[:exact_images]),
            known_labels=tuple(labels[:known_images].tolist()),
            known_image_sha256=tuple(_image_digest(image) for image in images[:known_images]),
        )
        for name, (images, labels) in batches.items()
    }

    def split_digest(names: tuple[str, ...]) -> str:
        return _labels_sha256(np.concatenate([batches[name][1] for name in names]))

    return ReleaseFacts(
        facts,
        split_digest(SPLIT_BATCHES["train"]),
        split_digest(SPLIT_BATCHES["test"]),
        batch_size=sizes.pop(),
        exact_images=exact_images,
    )


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array)).hexdigest()


def _labels_sha256(labels: np.ndarray) -> str:
    return _sha256(np.asarray(labels).astype("<i8"))


def _image_digest(image: np.ndarray) -> str:
    return _sha256(image)[:16]


# --------------------------------------------------------------------------- verification


class Verified(NamedTuple):
    """A split that passed ``verify``: its images and labels (in the release's order when
    its batches could be matched) and how it matched, in words."""

    images: np.ndarray
    labels: np.ndarray
    how: str


def verify(
    images: np.ndarray, labels: np.ndarray, split: str, facts: ReleaseFacts | None = None
) -> Verified:
    """Check a copy of CIFAR-10 ``split`` ("train" or "test") against the release's facts
    (default ``OFFICIAL_FACTS``). Raises ``DataCorruptedError`` with the reason in a phrase.

    1. It must hold as many images as the release, with the same label counts.
    2. If any block of ``batch_size`` images keeps a batch of the release (its labels' or its
       first images' digest), every block must be exactly one batch: labels identical, first
       ``exact_images`` images identical. Blocks in another order are put back in order.
    3. Otherwise the copy is in another order altogether: it is accepted when every image
       the facts know (the first 100 of each batch, by digest) is in it with its label.

    A copy in the release's order is checked on every label and ``exact_images`` images per
    batch; one in another order only on the known images and the label counts.
    """
    facts = facts or OFFICIAL_FACTS
    names = SPLIT_BATCHES[split]
    size = facts.batch_size
    expected = len(names) * size
    if images.shape != (expected, 3, 32, 32) or labels.shape != (expected,):
        raise HubRefusedError(
            f"it holds {len(labels):,} images of shape {list(images.shape[1:])}, the release "
            f"{expected:,} of [3, 32, 32]"
        )
    if labels.min() < 0 or labels.max() > 9:
        raise HubRefusedError(
            f"its labels run from {labels.min()} to {labels.max()}, not over CIFAR-10's 0-9"
        )
    counts = np.bincount(labels, minlength=10)
    want = np.sum([facts.batches[name].label_counts for name in names], axis=0)
    if not np.array_equal(counts, want):
        raise HubRefusedError(
            f"its images per class ({', '.join(map(str, counts))}) differ from the release's "
            f"({', '.join(map(str, want))})"
        )
    by_labels = {facts.batches[name].labels_sha256: name for name in names}
    by_images = {facts.batches[name].first_images_sha256: name for name in names}
    blocks = [slice(start, start + size) for start in range(0, expected, size)]
    label_match = [by_labels.get(_labels_sha256(labels[block])) for block in blocks]
    image_match = [by_images.get(_sha256(images[block][: facts.exact_images])) for block in blocks]
    if any(label_match) or any(image_match):
        return _in_batches(images, labels, split, facts, blocks, label_match, image_match)
    known = _known_images(images, labels, names, facts)
    return Verified(images, labels, f"in another order than the release's, {known}")


def _in_batches(
    images: np.ndarray,
    labels: np.ndarray,
    split: str,
    facts: ReleaseFacts,
    blocks: list[slice],
    label_match: list[str | None],
    image_match: list[str | None],
) -> Verified:
    """A copy that keeps the release's batches: each block must be one whole batch."""
    names = SPLIT_BATCHES[split]
    for block, by_labels, by_images in zip(blocks, label_match, image_match, strict=True):
        where = f"images {block.start:,}-{block.stop - 1:,}"
        if by_images is None and by_labels is not None:
            raise HubRefusedError(
                f"{where} carry {by_labels}'s labels but differ from its images (the first "
                f"{facts.exact_images} are checked)"
            )
        if by_labels is None and by_images is not None:
            raise HubRefusedError(f"{where} are {by_images}'s images with other labels")
        if by_labels is None:
            raise HubRefusedError(f"{where} match no batch of the release")
        if by_labels != by_images:
            raise HubRefusedError(f"{where} carry {by_labels}'s labels but {by_images}'s images")
    if sorted(label_match) != sorted(names):
        raise HubRefusedError(f"its batches are {', '.join(label_match)}")
    if list(label_match) != list(names):
        order = [label_match.index(name) for name in names]
        images = np.concatenate([images[blocks[index]] for index in order])
        labels = np.concatenate([labels[blocks[index]] for index in order])
        how = f"its batches put back in the release's order (they came as {', '.join(label_match)})"
    else:
        how = "in the release's order"
    want = facts.train_labels_sha256 if split == "train" else facts.test_labels_sha256
    if _labels_sha256(labels) != want:  # the batches' digests agree, so this cannot fail
        raise HubRefusedError("its labels differ from the release's")
    checked = len(names) * facts.exact_images
    return Verified(images, labels, f"{how}, every label and {checked:,} checked images identical")


def _known_images(
    images: np.ndarray, labels: np.ndarray, names: tuple[str, ...], facts: ReleaseFacts
) -> str:
    """Check that every image the facts know is in the copy with its label; say how many."""
    found: dict[str, set[int]] = {}
    for image, label in zip(images, labels.tolist(), strict=True):
        found.setdefault(_image_digest(image), set()).add(label)
    known = [
        (digest, label)
        for name in names
        for digest, label in zip(
            facts.batches[name].known_image_sha256, facts.batches[name].known_labels, strict=True
        )
    ]
    missing = sum(1 for digest, label in known if label not in found.get(digest, ()))
    if missing:
        raise HubRefusedError(
            f"it is not in the release's order, and {missing} of the {len(known)} images known "
            "from the release are missing from it or carry another label"
        )
    return f"all {len(known)} known images found with their labels"


# --------------------------------------------------------------------------- decoding


def decode_parquet(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N]) from a Parquet file in the Hub's
    schema: ``img`` a struct whose ``bytes`` are a PNG, ``label`` an integer. PNG is
    lossless, so the pixels are exactly those that were encoded. torchvision decodes PNG one
    image at a time (its batched decoder is for JPEG): about 45 us an image on one core.
    Raises ``DataCorruptedError`` for a file that is not in that form."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise HubUnavailableError(
            "reading the Hugging Face Hub mirror needs the pyarrow package (pip install pyarrow)"
        ) from None
    try:
        table = pq.read_table(path, columns=["img", "label"])
    except (pa.ArrowException, OSError) as error:
        raise HubRefusedError(
            f"{Path(path).name} is not a Parquet file with img and label columns "
            f"({_first_line(error)})"
        ) from None
    column = table.column("img").combine_chunks()
    label_column = table.column("label")
    if (
        not pa.types.is_struct(column.type)
        or column.type.get_field_index("bytes") < 0
        or not pa.types.is_integer(label_column.type)
        or column.null_count
        or label_column.null_count
    ):
        raise HubRefusedError(
            f"{Path(path).name} is not in the Hub's CIFAR-10 schema (img: struct of PNG bytes, "
            f"label: integer, no missing values); it has img: {column.type}, label: "
            f"{label_column.type}"
        )
    labels = label_column.to_numpy().astype(np.int64)
    images = np.empty((len(labels), 3, 32, 32), dtype=np.uint8)
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders on every call
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
        for index, encoded in enumerate(column.field("bytes").to_pylist()):
            images[index] = _decode(encoded, index, Path(path).name)
    return images, labels


def _decode(encoded: bytes | None, index: int, name: str) -> np.ndarray:
    if not encoded or not encoded.startswith(PNG_MAGIC):
        raise HubRefusedError(f"image {index:,} of {name} is not a PNG image")
    try:
        image = decode_png(
            torch.frombuffer(bytearray(encoded), dtype=torch.uint8), ImageReadMode.RGB
        )
    except RuntimeError as error:
        reason = re.sub(r"^.*\.cpp:\d+, ", "", _first_line(error))
        raise HubRefusedError(f"image {index:,} of {name} cannot be decoded ({reason})") from None
    if image.shape != (3, 32, 32):
        raise HubRefusedError(
            f"image {index:,} of {name} is {image.shape[2]}x{image.shape[1]}, not 32x32"
        )
    return image.numpy()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 200 else f"{line[:197]}..."


# --------------------------------------------------------------------------- the Hub source


def endpoint() -> str:
    """The Hub's address: ``HF_ENDPOINT`` when set (as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks huggingface_hub to use only files it has already."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def describe(revision: str = HUB_REVISION) -> str:
    """The mirror at a revision, in words."""
    return f"Hugging Face Hub mirror {HUB_REPO} (revision {revision})"


def cache_path(root: str | os.PathLike, split: str, revision: str = HUB_REVISION) -> Path:
    """Where a verified split from the Hub at ``revision`` is cached in the data folder."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", revision)
    return Path(root) / f"cifar10-hub-{safe}-{split}.npz"


def load_hub(
    split: str,
    root: Path,
    revision: str = HUB_REVISION,
    download: bool = True,
    facts: ReleaseFacts | None = None,
    *,
    reachable: Callable[[str], bool],
    save: Callable[..., None],
) -> tuple[Tensor, Tensor, str]:
    """CIFAR-10 ``split`` from the Hub mirror at ``revision`` as (images uint8 [N, 3, 32, 32],
    labels int64 [N], provenance), verified (``verify``) against ``facts`` (default
    ``OFFICIAL_FACTS``) and cached in the data folder ``root`` with ``save(path, **arrays)``.
    The cache's identity is the repository, the revision, the facts and the cache format; it
    is verified again when read. With ``download`` the Parquet file is fetched with
    ``huggingface_hub.hf_hub_download`` when there is no valid cache (``HF_HUB_OFFLINE``
    limits that to files huggingface_hub already has), after a quick ``reachable(endpoint())``.

    Raises ``HubUnavailableError`` when the file cannot be had (no cache and no download, the
    packages missing, a wrong revision), ``HubUnreachableError`` when the Hub cannot be
    reached and ``HubRefusedError`` when the copy is refused: not in the Hub's schema, or not
    the official release."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    facts = facts or OFFICIAL_FACTS
    cache = cache_path(root, split, revision)
    identity = _identity(revision, facts)
    cached = _read_cache(cache, identity, split, facts)
    if cached is None:
        if not download:
            raise HubUnavailableError(
                f"there is no verified {split} split from the {describe(revision)} in {root}"
            )
        path, commit = _download(split, root, revision, reachable)
        try:
            images, labels = decode_parquet(path)
            verified = verify(images, labels, split, facts)
        except HubRefusedError as error:
            raise HubRefusedError(
                f"refused the {split} split of the {describe(revision)}: {error}, so it is not "
                "the official release"
            ) from None
        save(
            cache,
            images=verified.images,
            labels=verified.labels,
            identity=np.str_(identity),
            commit=np.str_(commit),
            how=np.str_(verified.how),
        )
        cached = verified.images, verified.labels, commit, verified.how
    images, labels, commit, how = cached
    at = f"revision {revision}" + (f", commit {commit}" if commit and commit != revision else "")
    provenance = f"Hugging Face Hub mirror {HUB_REPO} ({at}), checked against the release: {how}"
    return torch.from_numpy(images), torch.from_numpy(labels), provenance


def _download(
    split: str, root: Path, revision: str, reachable: Callable[[str], bool]
) -> tuple[Path, str]:
    """Fetch a split's Parquet file into ``root/huggingface``: (its path, the commit id the
    revision resolved to, or "" when the path does not say)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise HubUnavailableError(
            "the Hugging Face Hub mirror needs the huggingface_hub and pyarrow packages "
            "(pip install huggingface_hub pyarrow)"
        ) from None
    local_only = offline()
    if not local_only and not reachable(endpoint()):
        raise HubUnreachableError(f"the Hugging Face Hub ({endpoint()}) cannot be reached")
    if not local_only:
        print(
            f"CIFAR-10: downloading the {split} split ({HUB_MEGABYTES[split]} MB) from the "
            f"{describe(revision)}; seconds at typical Colab bandwidth, then it is checked "
            "against the official release."
        )
    try:
        path = hf_hub_download(
            repo_id=HUB_REPO,
            repo_type="dataset",
            filename=HUB_FILES[split],
            revision=revision,
            cache_dir=str(root / HUB_DOWNLOAD_FOLDER),
            etag_timeout=HUB_ETAG_TIMEOUT_S,
            local_files_only=local_only,
        )
    except Exception as error:  # any failure here is this source failing, said in one line
        if local_only:
            raise HubUnreachableError(
                f"HF_HUB_OFFLINE is set and huggingface_hub has no copy of {HUB_FILES[split]} "
                f"from the {describe(revision)}"
            ) from None
        raise HubUnavailableError(
            f"the {describe(revision)} could not deliver {HUB_FILES[split]}: "
            f"{type(error).__name__}: {_first_line(error)}"
        ) from None
    found = re.search(r"snapshots[\\/]([0-9a-f]{40})[\\/]", str(path))
    return Path(path), found.group(1) if found else ""


def _identity(revision: str, facts: ReleaseFacts) -> str:
    """What a Hub cache is keyed by: the format, the repository, the revision and the facts
    it was verified against."""
    facts_digest = hashlib.sha256(json.dumps(asdict(facts), sort_keys=True).encode()).hexdigest()
    return json.dumps([HUB_CACHE_VERSION, HUB_REPO, revision, facts_digest])


def _read_cache(
    cache: Path, identity: str, split: str, facts: ReleaseFacts
) -> tuple[np.ndarray, np.ndarray, str, str] | None:
    """A cached split (images, labels, commit, how it matched) that still passes ``verify``,
    or None when there is none, or it is stale, damaged or fails (then it is rebuilt)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache) as stored:
            if str(stored["identity"]) != identity:
                return None  # another revision or other facts: downloaded and verified again
            images, labels = stored["images"], stored["labels"]
            commit, how = str(stored["commit"]), str(stored["how"])
    except Exception as error:  # any unreadable cache (zip CRC, truncation) is rebuilt
        print(f"Ignoring the damaged cache {cache} ({_first_line(error)}); rebuilding it.")
        return None
    if images.dtype != np.uint8 or labels.dtype != np.int64:
        print(f"Ignoring the cache {cache}: its arrays are not CIFAR-10 images; rebuilding it.")
        return None
    try:
        verified = verify(images, labels, split, facts)
    except HubRefusedError as error:
        print(f"Ignoring the cache {cache}: {error}, unlike the official release; rebuilding it.")
        return None
    return verified.images, verified.labels, commit, how
