"""Sine positional encoding of 2-D feature maps (DETR / Mask2Former style)."""
import math

import torch
from torch import Tensor, nn


class SinePositionalEncoding(nn.Module):
    """Normalised sine/cosine encoding of ``(y, x)`` positions.

    Args:
        num_feats: Channels per axis; the output has ``2 * num_feats`` channels.
        temperature: Frequency base.
        normalize: Scale coordinates to ``[0, scale]`` before encoding.
        scale: Scale used when ``normalize`` is True.
    """

    def __init__(self,
                 num_feats: int = 128,
                 temperature: float = 10000.0,
                 normalize: bool = True,
                 scale: float = 2 * math.pi) -> None:
        super().__init__()
        self.num_feats = num_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """Encode positions of ``x``.

        Args:
            x: Feature map, shape (B, C, H, W); only its shape, device and
                dtype are used (no padding mask: every position is valid).

        Returns:
            Positional encoding, shape (B, 2 * num_feats, H, W).
        """
        b, _, h, w = x.shape
        y_embed = torch.arange(1, h + 1, device=x.device, dtype=torch.float32)
        x_embed = torch.arange(1, w + 1, device=x.device, dtype=torch.float32)
        if self.normalize:
            eps = 1e-6
            y_embed = y_embed / (h + eps) * self.scale
            x_embed = x_embed / (w + eps) * self.scale
        dim_t = torch.arange(self.num_feats, device=x.device, dtype=torch.float32)
        dim_t = self.temperature**(2 * torch.div(dim_t, 2, rounding_mode='floor') / self.num_feats)
        pos_x = x_embed[:, None] / dim_t  # (W, F)
        pos_y = y_embed[:, None] / dim_t  # (H, F)
        pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
        pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
        pos = torch.cat((pos_y[:, None, :].expand(h, w, -1), pos_x[None, :, :].expand(h, w, -1)),
                        dim=2)
        return pos.permute(2, 0, 1).unsqueeze(0).expand(b, -1, -1, -1).to(x.dtype)

    def extra_repr(self) -> str:
        return (f'num_feats={self.num_feats}, temperature={self.temperature}, '
                f'normalize={self.normalize}, scale={self.scale}')
