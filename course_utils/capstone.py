"""The capstone network (lecture 06, recipe ``fast94``): a small residual net in the shape of
Keller Jordan's airbench94, with the tricks that make few training steps count.

A whitening stem (a 2x2 conv whose filters decorrelate the pixels of 2x2 patches, set from
the first training batch), then three residual blocks that widen and halve the image, then
max-pooling and a linear head whose logits are scaled down. BatchNorm keeps its scale fixed
at 1 and trains its shift 64x faster than the other weights.
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.support import blocks as check


class PatchWhitening(nn.Module):
    """A 2x2 conv with 2 filters per eigenvector of the patches' covariance (``v / sqrt(l)``
    and its negative), fixed from the first batch it sees in training; its bias trains."""

    def __init__(self, in_channels: int = 3, eps: float = 5e-4) -> None:
        super().__init__()
        patch_size = in_channels * 2 * 2
        self.conv = nn.Conv2d(in_channels, 2 * patch_size, kernel_size=2)
        self.conv.weight.requires_grad_(False)
        self.eps = eps
        self.register_buffer("ready", torch.tensor(False))  # saved in checkpoints with the weights
        self.checked = False  # whether `ready` was read: once, since reading it syncs a GPU

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from ``images`` [B, C, H, W] (training images only), in float32
        even under mixed precision."""
        patches = F.unfold(images.float(), kernel_size=2).transpose(1, 2)  # [B, (H-1)(W-1), C*4]
        patches = patches.reshape(-1, patches.shape[-1])
        with torch.autocast(images.device.type, enabled=False):
            covariance = patches.T @ patches / len(patches)
            eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = eigenvectors.T / (eigenvalues + self.eps).sqrt()[:, None]  # one per row
        filters = torch.cat([filters, -filters]).view_as(self.conv.weight)
        self.conv.weight.copy_(filters)
        self.ready.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.checked:
            if not self.ready:
                self.fit(x)
            self.checked = True
        return self.conv(x)


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm with its scale fixed at 1 and a shift that learns ``bias_lr`` times faster:
    stored divided by ``sqrt(bias_lr)``, it gets a gradient and a step ``sqrt(bias_lr)``
    times larger, each counting ``sqrt(bias_lr)`` times. Running statistics follow the last
    few batches (momentum 0.4), since a short run's weights change fast."""

    def __init__(self, channels: int, bias_lr: float = 64.0) -> None:
        super().__init__(channels, eps=1e-12, momentum=0.4)
        self.weight.requires_grad_(False)
        self.bias_scale = bias_lr**0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.num_batches_tracked.add_(self.training)
        shift = self.bias * self.bias_scale
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, shift,
                            self.training, self.momentum, self.eps)  # fmt: skip


class DownBlock(nn.Module):
    """conv - max-pool - BN - GELU - conv - BN, plus a 1x1-conv shortcut from the pooled input,
    then GELU: the airbench94 conv pair made residual, widening and halving the image."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = BatchNorm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = BatchNorm(out_channels)
        self.shortcut = nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(in_channels, out_channels, 1, bias=False),
            BatchNorm(out_channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.gelu(self.bn1(self.pool(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return F.gelu(out + self.shortcut(x))


class CapstoneNet(nn.Module):
    """Whitening stem (24 channels), three DownBlocks of ``widths`` (32 -> 15 -> 7 -> 3 pixels),
    global max-pool and a linear head; the logits are multiplied by ``logit_scale``."""

    def __init__(
        self, widths: Sequence[int] = (64, 256, 256), num_classes: int = 10,
        logit_scale: float = 1 / 9,
    ) -> None:  # fmt: skip
        super().__init__()
        check.capstone_arguments(widths, num_classes, logit_scale)
        self.whiten = PatchWhitening()
        channels = [self.whiten.conv.out_channels, *widths]
        self.blocks = nn.Sequential(
            OrderedDict((f"block{i}", DownBlock(channels[i - 1], channels[i])) for i in (1, 2, 3))
        )
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes, bias=False)
        )
        self.logit_scale = logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(x))
        return self.head(self.blocks(x)) * self.logit_scale
