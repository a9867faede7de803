"""Standard (DETR) transformer decoder of MaskFormer v1.

Learnable positional queries attend, through a stack of post-norm DETR decoder
layers, to one memory map (the backbone's coarsest feature or the pixel
decoder's transformer-encoder output). There is no masked attention: every
query sees every memory position. Each layer's output, after the shared final
``norm``, gives class logits and mask logits (mask embedding ⋅ per-pixel
embedding), so ``num_layers`` layers give ``num_layers`` predictions.

DETR semantics: the query *content* starts at zero; the learnable
``query_embed`` is a positional embedding added to queries and keys of the
self-attention and to the queries of the cross-attention; the sine encoding of
the memory is added to the cross-attention keys only (never to the values).

Module names reproduce the official checkpoints (``transformer.decoder.layers.
{i}.{self_attn,multihead_attn,linear1,linear2,norm1,norm2,norm3}``,
``transformer.decoder.norm``, ``query_embed``, ``input_proj``, ``class_embed``,
``mask_embed.layers.{0,1,2}``), so official weights load after a prefix rename.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..layers import MLP, SinePositionalEncoding, feed_forward


def _with_pos(x: Tensor, pos: Optional[Tensor]) -> Tensor:
    return x if pos is None else x + pos


class DETRDecoderLayer(nn.Module):
    """One DETR decoder layer: self-attention, cross-attention, FFN.

    Post-norm (default): ``x = norm_i(x + sublayer_i(x))``. Pre-norm:
    ``x = x + sublayer_i(norm_i(x))``. All tensors are batch-first.

    Args:
        embed_dims: Width C.
        num_heads: Attention heads.
        feedforward_dims: Hidden width of the FFN.
        dropout: Dropout of the attention weights, the FFN and the residuals.
        pre_norm: Normalise before each sub-layer instead of after.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_dims: int,
                 dropout: float = 0.1, pre_norm: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                               batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                                    batch_first=True)
        self.linear1 = nn.Linear(embed_dims, feedforward_dims)
        self.linear2 = nn.Linear(feedforward_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)  # inside the FFN
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def _self_attn(self, x: Tensor, query_pos: Optional[Tensor]) -> Tensor:
        q = k = _with_pos(x, query_pos)
        return self.dropout1(self.self_attn(q, k, value=x, need_weights=False)[0])

    def _cross_attn(self, x: Tensor, memory: Tensor, pos: Optional[Tensor],
                    query_pos: Optional[Tensor]) -> Tensor:
        out = self.multihead_attn(_with_pos(x, query_pos), _with_pos(memory, pos),
                                  value=memory, need_weights=False)[0]
        return self.dropout2(out)

    def _ffn(self, x: Tensor) -> Tensor:
        return self.dropout3(feed_forward(x, self.linear1, self.linear2, self.dropout))

    def forward(self,
                tgt: Tensor,
                memory: Tensor,
                pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        """Update the queries.

        Args:
            tgt: Query content, shape (B, Q, C).
            memory: Keys/values, shape (B, S, C).
            pos: Memory positional encoding (added to the keys), shape (B, S, C).
            query_pos: Query positional embedding, shape (B, Q, C).

        Returns:
            Updated query content, shape (B, Q, C).
        """
        if self.pre_norm:
            tgt = tgt + self._self_attn(self.norm1(tgt), query_pos)
            tgt = tgt + self._cross_attn(self.norm2(tgt), memory, pos, query_pos)
            return tgt + self._ffn(self.norm3(tgt))
        tgt = self.norm1(tgt + self._self_attn(tgt, query_pos))
        tgt = self.norm2(tgt + self._cross_attn(tgt, memory, pos, query_pos))
        return self.norm3(tgt + self._ffn(tgt))


class DETRDecoder(nn.Module):
    """A stack of :class:`DETRDecoderLayer` with a shared final ``norm``.

    Args:
        num_layers: Number of layers L.
        embed_dims: Width C.
        num_heads: Attention heads.
        feedforward_dims: FFN hidden width.
        dropout: Dropout rate.
        pre_norm: Pre-norm layers (the final ``norm`` is applied either way).
    """

    def __init__(self, num_layers: int, embed_dims: int, num_heads: int, feedforward_dims: int,
                 dropout: float = 0.1, pre_norm: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DETRDecoderLayer(embed_dims, num_heads, feedforward_dims, dropout, pre_norm)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)
        for p in self.parameters():  # the official Transformer._reset_parameters
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, tgt: Tensor, memory: Tensor, pos: Optional[Tensor] = None,
                query_pos: Optional[Tensor] = None) -> Tensor:
        """Run all layers and keep every layer's normalised output.

        Args:
            tgt: Initial query content, shape (B, Q, C).
            memory: Keys/values, shape (B, S, C).
            pos: Memory positional encoding, shape (B, S, C).
            query_pos: Query positional embedding, shape (B, Q, C).

        Returns:
            ``norm(output)`` after each layer, shape (L, B, Q, C).
        """
        outputs = []
        for layer in self.layers:
            tgt = layer(tgt, memory, pos=pos, query_pos=query_pos)
            outputs.append(self.norm(tgt))
        return torch.stack(outputs)


class StandardTransformerDecoder(nn.Module):
    """MaskFormer v1 transformer predictor (built directly, not registered).

    Args:
        in_channels: Channels of the memory map.
        num_classes: Number of classes K (a "no object" logit is added).
        embed_dims: Query width C (official ``hidden_dim``).
        num_queries: Number of queries Q.
        num_heads: Attention heads.
        num_layers: Decoder layers L (one prediction per layer).
        feedforward_dims: FFN width.
        mask_dims: Channels of the per-pixel mask embeddings.
        dropout: Dropout in all sub-layers (0.1 in the official recipe).
        pre_norm: Pre-norm decoder layers (official ``PRE_NORM``, False).
        enforce_input_proj: Add the 1x1 input projection even when
            ``in_channels == embed_dims`` (official ``enforce_input_project``).
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_classes: int = 150,
                 embed_dims: int = 256,
                 num_queries: int = 100,
                 num_heads: int = 8,
                 num_layers: int = 6,
                 feedforward_dims: int = 2048,
                 mask_dims: int = 256,
                 dropout: float = 0.1,
                 pre_norm: bool = False,
                 enforce_input_proj: bool = False) -> None:
        super().__init__()
        if embed_dims % num_heads or embed_dims % 2:
            raise ValueError(f'embed_dims={embed_dims} must be even and divisible by '
                             f'num_heads={num_heads}')
        if num_layers < 1:
            raise ValueError(f'num_layers must be at least 1, got {num_layers}')
        self.in_channels = in_channels
        self.mask_dims = mask_dims
        self.num_queries = num_queries
        self.num_layers = num_layers
        self.pe_layer = SinePositionalEncoding(embed_dims // 2, normalize=True)
        self.transformer = nn.Module()  # holds ``decoder`` only: official key names
        self.transformer.decoder = DETRDecoder(num_layers, embed_dims, num_heads,
                                               feedforward_dims, dropout, pre_norm)
        self.query_embed = nn.Embedding(num_queries, embed_dims)
        if in_channels != embed_dims or enforce_input_proj:
            self.input_proj: nn.Module = nn.Conv2d(in_channels, embed_dims, kernel_size=1)
            nn.init.kaiming_uniform_(self.input_proj.weight, a=1)  # c2_xavier_fill
            nn.init.constant_(self.input_proj.bias, 0)
        else:
            self.input_proj = nn.Identity()
        self.class_embed = nn.Linear(embed_dims, num_classes + 1)
        self.mask_embed = MLP(embed_dims, embed_dims, mask_dims, 3)

    def forward(self, memory: Tensor, mask_features: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """Decode the queries into class and mask predictions.

        Args:
            memory: Memory map, shape (B, in_channels, H_m, W_m) (e.g. res5 at 1/32).
            mask_features: Per-pixel embeddings, shape (B, mask_dims, H/4, W/4).

        Returns:
            tuple: class logits per layer, each (B, Q, K + 1), and mask logits
            per layer, each (B, Q, H/4, W/4); ``num_layers`` entries, the last
            one is the final prediction.
        """
        hs = self.decode_queries(memory, mask_features)  # (L, B, Q, C)
        cls_preds = self.class_embed(hs)
        mask_preds = torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hs), mask_features)
        return list(cls_preds.unbind(0)), list(mask_preds.unbind(0))

    def decode_queries(self, memory: Tensor, mask_features: Tensor) -> Tensor:
        """Run the DETR decoder: the normalised query states of every layer.

        Args:
            memory: Memory map, shape (B, in_channels, H_m, W_m).
            mask_features: Per-pixel embeddings (only checked here),
                shape (B, mask_dims, H/4, W/4).

        Returns:
            Query states, shape (L, B, Q, embed_dims).
        """
        self._check_inputs(memory, mask_features)
        pos = self.pe_layer(memory).flatten(2).transpose(1, 2)  # (B, S, C)
        src = self.input_proj(memory).flatten(2).transpose(1, 2)  # (B, S, C)
        query_pos = self.query_embed.weight.unsqueeze(0).expand(memory.shape[0], -1, -1)
        return self.transformer.decoder(torch.zeros_like(query_pos), src, pos=pos,
                                        query_pos=query_pos)

    def _check_inputs(self, memory: Tensor, mask_features: Tensor) -> None:
        """Raise a readable error for inputs of the wrong rank or width."""
        if memory.dim() != 4 or memory.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects a memory map of shape (B, '
                             f'{self.in_channels}, H, W), got {tuple(memory.shape)}')
        if mask_features.dim() != 4 or mask_features.shape[1] != self.mask_dims:
            raise ValueError(f'{type(self).__name__} expects mask features of shape (B, '
                             f'{self.mask_dims}, H, W), got {tuple(mask_features.shape)}')
        if mask_features.shape[0] != memory.shape[0]:
            raise ValueError(f'batch sizes differ: memory {memory.shape[0]}, mask features '
                             f'{mask_features.shape[0]}')
