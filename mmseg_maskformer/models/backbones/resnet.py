"""ResNet whose frozen BatchNorms are folded into the preceding convolutions.

A BatchNorm in eval mode (the recipes' frozen backbone norms, ``norm_eval=True``,
and every norm at inference) is the per-channel affine map
``y = (x - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``. After a
convolution it folds into the convolution: weights ``W * s`` (per output
channel) and bias ``beta - mean * s``. ``ResNetFoldedBN`` is mmseg's ``ResNet``
(same arguments, modules, parameters and buffers, so the same checkpoints) whose
blocks compute each conv + BatchNorm pair that way whenever the BatchNorm is in
eval mode: one pass over the activation less per pair in the forward pass and
in the backward pass, where the folded scale reaches ``W`` (and ``gamma``,
``beta`` if they train) through autograd. A BatchNorm in training mode (batch
statistics) runs as usual.
"""
from typing import Callable

import torch
from mmseg.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils import checkpoint as cp

from mmseg_maskformer.registry import MODELS


def folds(conv: nn.Module, norm: nn.Module) -> bool:
    """Whether ``norm(conv(x))`` can run as one convolution with folded weights."""
    return (type(conv) is nn.Conv2d and isinstance(norm, _BatchNorm) and not norm.training
            and norm.running_mean is not None and norm.running_var is not None)


def conv_norm(conv: nn.Module, norm: nn.Module, x: Tensor) -> Tensor:
    """``norm(conv(x))``, as one convolution when the BatchNorm ``norm`` is in eval mode.

    Args:
        conv: The convolution.
        norm: The normalisation after it.
        x: Input (B, C_in, H, W).

    Returns:
        (B, C_out, H', W'), equal to ``norm(conv(x))`` up to float rounding.
    """
    if not folds(conv, norm):
        return norm(conv(x))
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    bias = -norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    if norm.bias is not None:
        bias = bias + norm.bias
    weight = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
    return conv._conv_forward(x, weight, bias.to(conv.weight.dtype))


def sequential_conv_norm(layers: nn.Sequential, x: Tensor) -> Tensor:
    """Runs ``layers``, folding each convolution + eval-mode BatchNorm pair."""
    modules = list(layers)
    i = 0
    while i < len(modules):
        if i + 1 < len(modules) and folds(modules[i], modules[i + 1]):
            x = conv_norm(modules[i], modules[i + 1], x)
            i += 2
        else:
            x = modules[i](x)
            i += 1
    return x


def _block_forward(block: nn.Module, residual: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``relu(residual(x) + shortcut(x))``, checkpointed as mmseg's blocks with ``with_cp``."""
    def inner(x: Tensor) -> Tensor:
        out = residual(x)
        out += x if block.downsample is None else sequential_conv_norm(block.downsample, x)
        return out

    out = cp.checkpoint(inner, x) if block.with_cp and x.requires_grad else inner(x)
    return block.relu(out)


class FoldedBasicBlock(BasicBlock):
    """mmseg's ``BasicBlock`` with :func:`conv_norm` pairs."""

    def forward(self, x: Tensor) -> Tensor:
        return _block_forward(self, self._residual, x)

    def _residual(self, x: Tensor) -> Tensor:
        out = self.relu(conv_norm(self.conv1, self.norm1, x))
        return conv_norm(self.conv2, self.norm2, out)


class FoldedBottleneck(Bottleneck):
    """mmseg's ``Bottleneck`` with :func:`conv_norm` pairs (plugins: mmseg's forward)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.with_plugins:
            return super().forward(x)
        return _block_forward(self, self._residual, x)

    def _residual(self, x: Tensor) -> Tensor:
        out = self.relu(conv_norm(self.conv1, self.norm1, x))
        out = self.relu(conv_norm(self.conv2, self.norm2, out))
        return conv_norm(self.conv3, self.norm3, out)


_FOLDED_BLOCKS = {BasicBlock: FoldedBasicBlock, Bottleneck: FoldedBottleneck}


@MODELS.register_module()
class ResNetFoldedBN(ResNet):
    """mmseg's ``ResNet`` with eval-mode BatchNorms folded (see the module doc).

    Takes exactly the arguments of mmseg's ``ResNet`` (``deep_stem`` and
    ``avg_down`` included) and has its state-dict keys, so a config switches
    between the two by ``type`` alone.
    """

    arch_settings = {
        depth: (_FOLDED_BLOCKS[block], stages)
        for depth, (block, stages) in ResNet.arch_settings.items()
    }

    def forward(self, x: Tensor) -> tuple:
        """Stem, max-pooling and the stages; returns the ``out_indices`` stages' maps."""
        if self.deep_stem:
            x = sequential_conv_norm(self.stem, x)
        else:
            x = self.relu(conv_norm(self.conv1, self.norm1, x))
        x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
