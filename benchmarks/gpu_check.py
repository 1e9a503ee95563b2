"""The prepared GPU check: one command that measures the course's A100 claims the moment a GPU
is at hand, within a hard time budget, writing every result as soon as it is known.

    python benchmarks/gpu_check.py --out DIR [--source PATH] [--seeds 3] [--lectures 01,05]
                                   [--budget-s 540] [--dry-run]

In order of importance:
1. throughput: a training step of the capstone network, of Page's ResNet-9 (``page94``'s)
   and of ResNet-20 (lecture 04's net) at batch 512 in the precision
   ``settings.choose_precision`` picks, channels_last, with and without ``torch.compile``:
   images/s and achieved TFLOP/s (3 x forward FLOPs);
2. ``fast94`` on real CIFAR-10 (``--source``, default the shared JPEG copy where it lies
   beside the checkout, else the official release, downloaded if needed), the full recipe
   (10 epochs, validation split, the test set once), for as many seeds as time allows:
   validation and test accuracy, wall time, time to first reach 94% validation accuracy;
   then ``page94`` (30 epochs) the same way, one seed, if time is left;
3. lectures in full mode (``--lectures``), executed top to bottom with nbclient on that data:
   wall time each, executed notebooks and their figures bundled in ``lectures.tar.gz``.
``summary.json`` and ``summary.md`` in ``--out`` are rewritten after every result, so a run
cut short keeps what it measured; ``--budget-s`` stops cleanly before that many seconds.
``--dry-run`` runs steps 1-2 on the CPU with tiny sizes and synthetic data (a CI test).
Needs only torch, torchvision, numpy, matplotlib, seaborn, pandas and tqdm for steps 1-2;
step 3 also needs nbclient and ipykernel (bring them as wheels to an offline machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from course_utils import data, params, settings
from course_utils.capstone import CapstoneNet
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet, ResNet9
from course_utils.recipes import get_recipe, run
from course_utils.support import sources
from course_utils.train import fit

FULL = {"batch": 512, "images": 512 * 24, "train_images": None, "test_images": None}
DRY = {"batch": 32, "images": 32 * 4, "epochs": 2, "train_images": 600, "test_images": 200}
"""Each recipe runs its own epochs; a dry run caps them at DRY's."""
TARGET = 0.94  # the capstone's validation-accuracy target


class Report:
    """The results so far, written to ``out`` as JSON and Markdown after every change."""

    def __init__(self, out: Path, facts: dict) -> None:
        self.out, self.facts = out, facts
        self.throughput: list[dict] = []
        self.fast94: list[dict] = []
        self.page94: list[dict] = []
        self.lectures: list[dict] = []
        self.notes: list[str] = []
        out.mkdir(parents=True, exist_ok=True)
        self.write()

    def add(self, section: str, row: dict) -> None:
        getattr(self, section).append(row)
        print(f"{section}: {json.dumps(row)}", flush=True)
        self.write()

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", flush=True)
        self.write()

    def write(self) -> None:
        content = {
            "facts": self.facts,
            "throughput": self.throughput,
            "fast94": self.fast94,
            "page94": self.page94,
            "lectures": self.lectures,
            "notes": self.notes,
        }
        (self.out / "summary.json").write_text(json.dumps(content, indent=1))
        (self.out / "summary.md").write_text(self.markdown())

    def markdown(self) -> str:
        lines = ["# GPU check", "", *(f"- {key}: {value}" for key, value in self.facts.items())]
        lines += ["", "## Throughput (training step)", ""]
        lines += ["| net | compile | precision | images/s | TFLOP/s |", "|---|---|---|---|---|"]
        lines += [
            f"| {r['net']} | {r['compile']} | {r['precision']} | {r['images_per_sec']:,.0f} | "
            f"{r['tflops']:.1f} |"
            for r in self.throughput
        ]
        for name in ("fast94", "page94"):
            lines += [
                "",
                f"## {name}",
                "",
                "| seed | epochs | val acc | test acc | wall s | 94% at s |",
            ]
            lines += ["|---|---|---|---|---|---|"]
            lines += [
                f"| {r['seed']} | {r['epochs']} | {100 * r['val_acc']:.2f}% | "
                f"{100 * r['test_acc']:.2f}% | {r['seconds']:.0f} | {r['seconds_to_94'] or '-'} |"
                for r in getattr(self, name)
            ]
        lines += [
            "",
            "## Lectures (full mode)",
            "",
            "| lecture | status | wall s |",
            "|---|---|---|",
        ]
        lines += [f"| {r['lecture']} | {r['status']} | {r['seconds']:.0f} |" for r in self.lectures]
        lines += ["", "## Notes", "", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"


def main() -> None:
    """Parse the arguments and run the three steps in order, each within the time budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for every result")
    parser.add_argument("--source", help="CIFAR-10 copy (default: the shared JPEG archive)")
    parser.add_argument("--seeds", type=int, default=3, help="fast94 seeds, as time allows")
    parser.add_argument("--lectures", default="", help="lectures to run in full mode: 01,05")
    parser.add_argument("--budget-s", type=float, default=540, help="stop before this many s")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    args = parser.parse_args()
    start = time.perf_counter()

    def left() -> float:
        return args.budget_s - (time.perf_counter() - start)

    device = torch.device("cpu") if args.dry_run else settings.get_device()
    precision, reason = settings.choose_precision(device)
    sizes = DRY if args.dry_run else FULL
    report = Report(args.out, environment(device, precision, reason, args))
    if device.type != "cuda" and not args.dry_run:
        report.note("no CUDA GPU: the full check is meant for a GPU; use --dry-run on a CPU")
    measure_throughput(report, device, sizes, args.dry_run, left)
    train_recipe("fast94", report, sizes, args, left, seeds=args.seeds)
    train_recipe("page94", report, sizes, args, left, seeds=1)
    if args.lectures and not args.dry_run:
        run_lectures(report, args.lectures.split(","), args, left)
    report.note(
        f"finished in {time.perf_counter() - start:.0f} s of a {args.budget_s:.0f} s budget"
    )


def environment(device: torch.device, precision: str, reason: str, args) -> dict:
    """What the numbers were measured on."""
    import torchvision

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    return {
        "gpu": gpu,
        "device": str(device),
        "precision": f"{precision} ({reason})",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "mode": "dry run (CPU, tiny sizes, synthetic data)" if args.dry_run else "full",
        "budget_s": args.budget_s,
    }


def nets(dry_run: bool) -> dict[str, Callable[[], nn.Module]]:
    """The networks whose training step is timed (narrowed in a dry run)."""
    if dry_run:
        return {"capstone (narrowed)": lambda: CapstoneNet(widths=(8, 16, 16)),
                "resnet9_page (narrowed)": lambda: ResNet9(widths=(8, 16, 32, 48)),
                "resnet20": lambda: ResNet(blocks=(3, 3, 3), widths=(16, 32, 64))}  # fmt: skip
    return {"capstone": CapstoneNet, "resnet9_page": ResNet9,
            "resnet20": lambda: ResNet(blocks=(3, 3, 3), widths=(16, 32, 64))}  # fmt: skip


def measure_throughput(report: Report, device, sizes: dict, dry_run: bool, left) -> None:
    """Step 1: images/s of ``fit``'s training step, the second epoch of two (the first warms
    up cuDNN's autotuner and, with compile, pays the compilation)."""
    images = data.synthetic_cifar10(sizes["images"], seed=0)
    for name, build in nets(dry_run).items():
        for compile in (False, True) if device.type == "cuda" else (False,):
            if left() < 60 and not dry_run:
                report.note(f"throughput of {name} (compile={compile}) skipped: out of time")
                return
            torch.manual_seed(0)
            model = build()
            loader = DeviceLoader(images, sizes["batch"], device=device)
            try:
                history = fit(model, loader, epochs=2, schedule="constant", compile=compile,
                              progress=False)  # fmt: skip
            except Exception as error:  # a compile failure is a result to report, not a crash
                report.note(f"{name} compile={compile} failed: {type(error).__name__}: {error}")
                continue
            rate = history.final["images_per_sec"]
            flops = params.training_flops(model, 1)
            report.add(
                "throughput",
                {
                    "net": name,
                    "compile": compile,
                    "precision": history.run["precision"],
                    "batch": sizes["batch"],
                    "images_per_sec": rate,
                    "tflops": rate * flops / 1e12,
                },
            )


def train_recipe(name: str, report: Report, sizes: dict, args, left, seeds: int) -> None:
    """Step 2: one recipe (fast94, then page94), one seed after another while time allows."""
    source = "synthetic" if args.dry_run else (args.source or data.shared_cifar10_archive())
    source = source or "cifar10"  # no shared copy (e.g. Colab): the official release
    train_data = data.cifar10("train", source=str(source), n=sizes["train_images"])
    test_data = data.cifar10("test", source=str(source), n=sizes["test_images"])
    recipe = get_recipe(name)
    if args.dry_run:
        recipe = recipe.replace(epochs=sizes["epochs"], batch_size=64)
    small = {"fast94": lambda: CapstoneNet(widths=(8, 16, 16)),
             "page94": lambda: ResNet9(widths=(16, 32, 64, 96))}[name]  # fmt: skip
    last_seconds = 0.0
    for seed in range(seeds):
        if left() < 1.2 * last_seconds + 30:
            report.note(f"{name} seed {seed} not started: {left():.0f} s left")
            return
        reached: dict[str, float] = {}
        started = time.perf_counter()
        on_epoch = _watch(started, reached, left)
        torch.manual_seed(seed)
        model = small if args.dry_run else None
        result = run(recipe, train_data, test_data, model=model, seed=seed, progress=False,
                     on_epoch=on_epoch)  # fmt: skip
        last_seconds = time.perf_counter() - started
        report.add(
            name,
            {
                "seed": seed,
                "epochs": len(result.history.epochs),
                "val_acc": result.history.final["val_acc"],
                "test_acc": result.test.accuracy,
                "tta": result.history.test["tta"],
                "seconds": last_seconds,
                "seconds_to_94": round(reached["seconds"]) if reached else None,
                "data": train_data.provenance or train_data.source,
            },
        )


def _watch(started: float, reached: dict, left: Callable[[], float]) -> Callable:
    """An ``on_epoch`` callback: note when validation first reaches the target, and stop the
    run cleanly (keeping the epochs done) when the time budget is nearly spent."""

    def on_epoch(epoch: int, record: dict) -> bool:
        if record["val_acc"] >= TARGET and "seconds" not in reached:
            reached["seconds"] = time.perf_counter() - started
        return left() < 20

    return on_epoch


def run_lectures(report: Report, lectures: list[str], args, left) -> None:
    """Step 3: execute each lecture top to bottom in full mode and bundle what it drew."""
    import nbclient
    import nbformat

    root = Path(__file__).resolve().parent.parent
    source = args.source or data.shared_cifar10_archive()
    os.environ.pop(settings.SMOKE_ENV, None)
    if source is not None:
        os.environ[sources.SOURCE_ENV] = str(Path(source).resolve())
    executed = args.out / "lectures"
    executed.mkdir(exist_ok=True)
    for number in lectures:
        matches = sorted((root / "notebooks").glob(f"{number.strip()}_*.ipynb"))
        if not matches or left() < 60:
            status = "not found" if not matches else "skipped: out of time"
            report.add("lectures", {"lecture": number, "status": status, "seconds": 0.0})
            continue
        notebook = nbformat.read(matches[0], as_version=4)
        started = time.perf_counter()
        client = nbclient.NotebookClient(
            notebook,
            timeout=int(left() - 30),
            resources={"metadata": {"path": str(matches[0].parent)}},
        )
        try:
            client.execute()
            status = "ran"
        except Exception as error:
            status = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
        nbformat.write(notebook, executed / matches[0].name)
        report.add(
            "lectures",
            {
                "lecture": matches[0].stem,
                "status": status,
                "seconds": time.perf_counter() - started,
            },
        )
        with tarfile.open(args.out / "lectures.tar.gz", "w:gz") as bundle:
            bundle.add(executed, arcname="lectures")


if __name__ == "__main__":
    main()
