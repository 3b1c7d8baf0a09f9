"""d2lmini: the small shared toolkit of the Hands-on PyTorch book.

Import it as ``import d2lmini``. Heavy dependencies (matplotlib, torchvision, tqdm)
load only when a function that needs them is called.
"""

from .checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from .cnn import (
    DenseBlock,
    Inception,
    Residual,
    alexnet,
    alexnet_28,
    bn_lenet,
    densenet,
    googlenet,
    nin,
    nin_block,
    resnet18,
    transition_block,
    vgg,
    vgg_block,
)
from .data import (
    FashionMNISTBatches,
    get_dataloader_workers,
    get_fashion_mnist_labels,
    load_data_fashion_mnist,
    load_fashion_mnist_datasets,
    load_fashion_mnist_splits,
    prepare_fashion_mnist,
    read_fashion_mnist,
)
from .deploy import export_onnx, lenet_cache_path, preprocessing_spec, trained_lenet
from .devices import cpu, num_gpus, synchronize, try_all_gpus, try_gpu
from .distributed import Placement, backend_and_device, device_type_for, run_torchrun
from .env import env_info, seed_everything
from .models import conv_output_size, count_parameters, lenet, mlp, softmax_regression
from .performance import FreedMemory, keep_freed_memory
from .plotting import Animator, plot, set_figsize, show_images, use_svg_display
from .profiles import Settings, choose, current_profile
from .scratch import corr2d, numpy_two_layer_grads
from .serving import BadInput, Predictor, decode_png, make_server, running
from .timer import Timer, time_in_turn
from .training import (
    Accumulator,
    History,
    accuracy,
    evaluate_accuracy,
    fit_full_batch,
    init_cnn,
    sgd_recipe,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "Accumulator",
    "Animator",
    "BadInput",
    "CheckpointError",
    "DenseBlock",
    "FashionMNISTBatches",
    "FreedMemory",
    "History",
    "Inception",
    "Placement",
    "Predictor",
    "Residual",
    "Settings",
    "Timer",
    "accuracy",
    "alexnet",
    "alexnet_28",
    "backend_and_device",
    "bn_lenet",
    "capture_rng_state",
    "choose",
    "conv_output_size",
    "corr2d",
    "count_parameters",
    "cpu",
    "current_profile",
    "decode_png",
    "densenet",
    "device_type_for",
    "env_info",
    "evaluate_accuracy",
    "export_onnx",
    "fit_full_batch",
    "get_dataloader_workers",
    "get_fashion_mnist_labels",
    "googlenet",
    "init_cnn",
    "keep_freed_memory",
    "lenet",
    "lenet_cache_path",
    "load_checkpoint",
    "load_data_fashion_mnist",
    "load_fashion_mnist_datasets",
    "load_fashion_mnist_splits",
    "make_server",
    "mlp",
    "nin",
    "nin_block",
    "num_gpus",
    "numpy_two_layer_grads",
    "plot",
    "prepare_fashion_mnist",
    "preprocessing_spec",
    "read_fashion_mnist",
    "resnet18",
    "restore_rng_state",
    "run_torchrun",
    "running",
    "save_checkpoint",
    "seed_everything",
    "set_figsize",
    "sgd_recipe",
    "show_images",
    "softmax_regression",
    "synchronize",
    "time_in_turn",
    "train",
    "trained_lenet",
    "transition_block",
    "try_all_gpus",
    "try_gpu",
    "use_svg_display",
    "vgg",
    "vgg_block",
]
