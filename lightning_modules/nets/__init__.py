"""Plain-torch segmentation and classification networks (no Lightning, no file I/O).

`NETS` maps the snake_case model name to its class (docs/design.md, "Networks"). Each net class says
which pretrainable encoders it holds in `encoder_parts` (`{"cnn": attr, "swin": attr}`), and its module
defines `checkpoint_filter(state_dict, net, part) -> dict` right below the class; `load_weights` uses both.
"""

from lightning_modules.nets.cnn_classifier import CNNClassifier
from lightning_modules.nets.cs_unet import CSUNet
from lightning_modules.nets.hiformer import HiFormer
from lightning_modules.nets.swin_classifier import SwinClassifier
from lightning_modules.nets.swin_unet import SwinUnet
from lightning_modules.nets.transdeeplab import TransDeepLab
from lightning_modules.nets.unet import UNet
from lightning_modules.nets.unetplusplus import UNetPlusPlus

NETS: dict[str, type] = {
    "unet": UNet,
    "unetplusplus": UNetPlusPlus,
    "swin_unet": SwinUnet,
    "hiformer": HiFormer,
    "transdeeplab": TransDeepLab,
    "cs_unet": CSUNet,
    "swin_classifier": SwinClassifier,
    "cnn_classifier": CNNClassifier,
}

__all__ = [
    "NETS",
    "CNNClassifier",
    "CSUNet",
    "HiFormer",
    "SwinClassifier",
    "SwinUnet",
    "TransDeepLab",
    "UNet",
    "UNetPlusPlus",
]
