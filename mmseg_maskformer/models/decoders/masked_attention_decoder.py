"""Masked-attention transformer decoder of Mask2Former.

Learnable queries cross-attend to one level of the pixel decoder's memory per
layer (coarse to fine, in rotation), with attention restricted to the
foreground of the mask predicted by the previous layer. A prediction (class
logits + mask logits) is made from the initial queries and after every layer,
so ``num_layers`` layers give ``num_layers + 1`` predictions.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, SinePositionalEncoding
from ..layers.factored_masks import FactoredMasks, factored_product

MaskPrediction = Union[Tensor, FactoredMasks]


class MaskedAttentionDecoder(nn.Module):
    """Mask2Former transformer decoder (built directly, not registered).

    Args:
        in_channels: Channels of the pixel decoder's memory maps.
        num_classes: Number of classes K (a "no object" logit is added).
        embed_dims: Query width C.
        num_queries: Number of queries Q.
        num_heads: Attention heads.
        num_layers: Masked-attention layers (9 in the official recipe).
        feedforward_dims: FFN width.
        mask_dims: Channels of the per-pixel mask embeddings.
        num_levels: Memory levels used in rotation.
        dropout: Dropout in all sub-layers.
        enforce_input_proj: Add a 1x1 projection even when widths match.
    """

    def __init__(self,
                 in_channels: int = 256,
                 num_classes: int = 150,
                 embed_dims: int = 256,
                 num_queries: int = 100,
                 num_heads: int = 8,
                 num_layers: int = 9,
                 feedforward_dims: int = 2048,
                 mask_dims: int = 256,
                 num_levels: int = 3,
                 dropout: float = 0.0,
                 enforce_input_proj: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.num_levels = num_levels
        self.num_queries = num_queries
        self.pe_layer = SinePositionalEncoding(embed_dims // 2, normalize=True)
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(embed_dims, num_heads, dropout) for _ in range(num_layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(embed_dims, num_heads, dropout) for _ in range(num_layers))
        self.transformer_ffn_layers = nn.ModuleList(
            FFNLayer(embed_dims, feedforward_dims, dropout) for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(embed_dims)
        self.query_feat = nn.Embedding(num_queries, embed_dims)
        self.query_embed = nn.Embedding(num_queries, embed_dims)
        self.level_embed = nn.Embedding(num_levels, embed_dims)
        self.input_proj = nn.ModuleList()
        for _ in range(num_levels):
            if in_channels != embed_dims or enforce_input_proj:
                conv = nn.Conv2d(in_channels, embed_dims, kernel_size=1)
                nn.init.kaiming_uniform_(conv.weight, a=1)
                nn.init.constant_(conv.bias, 0)
                self.input_proj.append(conv)
            else:
                self.input_proj.append(nn.Identity())
        self.class_embed = nn.Linear(embed_dims, num_classes + 1)
        self.mask_embed = MLP(embed_dims, embed_dims, mask_dims, 3)

    def forward(self,
                memories: List[Tensor],
                mask_features: Tensor,
                final_only: bool = False,
                factored: bool = False) -> Tuple[List[Tensor], List[MaskPrediction]]:
        """Decode queries into class and mask predictions.

        With ``final_only`` (inference), the intermediate masks serve only as
        attention masks, so they are made at the attention resolution from
        ``mask_features`` resized there: bilinear resizing is linear, so
        ``resize(q . F) = q . resize(F)`` and the attention masks are those of
        the full computation up to float rounding, for a fraction of the mask
        products.

        Args:
            memories: ``num_levels`` maps from the pixel decoder, coarse to
                fine, each (B, in_channels, H_l, W_l).
            mask_features: Per-pixel embeddings, shape (B, mask_dims, H/4, W/4).
            final_only: Return the final prediction only.
            factored: Return the masks as :class:`FactoredMasks` (training:
                the criterion forms only the logits it reads); the attention
                masks are then made at the attention resolution as with
                ``final_only``.

        Returns:
            tuple: class logits per prediction, each (B, Q, K + 1), and mask
            logits per prediction, each (B, Q, H/4, W/4) or factored;
            ``num_layers + 1`` entries (one with ``final_only``), the last one
            is the final prediction.
        """
        return self._decode(memories, mask_features, final_only, factored)

    def _decode(self, memories: List[Tensor], mask_features: Tensor, final_only: bool,
                factored: bool) -> Tuple[List[Tensor], List[MaskPrediction]]:
        if len(memories) != self.num_levels:
            raise ValueError(f'decoder expects {self.num_levels} memory levels, '
                             f'got {len(memories)}')
        batch = mask_features.shape[0]
        srcs, pos, sizes = [], [], []
        for i, mem in enumerate(memories):
            sizes.append(tuple(mem.shape[-2:]))
            pos.append(self.pe_layer(mem).flatten(2).transpose(1, 2))
            src = self.input_proj[i](mem).flatten(2).transpose(1, 2)
            srcs.append(src + self.level_embed.weight[i].to(src.dtype)[None, None, :])
        query_pos = self.query_embed.weight.unsqueeze(0).expand(batch, -1, -1)
        output = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        # prediction j masks the attention of layer j, which reads level j % num_levels
        attn_sizes = [sizes[j % self.num_levels] for j in range(self.num_layers)]
        low_res = {}
        if final_only or factored:
            with torch.no_grad():  # read by the attention masks only
                # PyTorch's CPU bilinear resize runs channels-last internally: one
                # conversion here, not one in and one out per size (same values)
                source = mask_features.detach().contiguous(memory_format=torch.channels_last)
                low_res = {size: F.interpolate(source, size=size, mode='bilinear',
                                               align_corners=False)
                           for size in set(attn_sizes)}

        cls_preds, mask_preds = [], []
        attn_mask = None
        for j in range(self.num_layers + 1):
            if j > 0:
                level = (j - 1) % self.num_levels
                output = self.transformer_cross_attention_layers[j - 1](
                    output, srcs[level], attn_mask=attn_mask, pos=pos[level],
                    query_pos=query_pos)
                output = self.transformer_self_attention_layers[j - 1](output,
                                                                       query_pos=query_pos)
                output = self.transformer_ffn_layers[j - 1](output)
            last = j == self.num_layers
            decoded = self.decoder_norm(output)
            mask_embed = self.mask_embed(decoded)
            if low_res and not last:
                with torch.no_grad():
                    small = factored_product(mask_embed, low_res[attn_sizes[j]])
                attn_mask = masked_attention_mask(small, attn_sizes[j])
            if final_only and not last:
                continue
            cls_preds.append(self.class_embed(decoded))
            mask_preds.append(FactoredMasks(mask_embed, mask_features) if factored
                              else factored_product(mask_embed, mask_features))
            if not last and not low_res:
                attn_mask = masked_attention_mask(mask_preds[-1], attn_sizes[j])
        return cls_preds, mask_preds


@torch.no_grad()
def masked_attention_mask(mask_pred: Tensor, size: Tuple[int, int],
                          num_heads: Optional[int] = None) -> Tensor:
    """Boolean cross-attention mask from mask logits.

    A query may attend to the pixels its resized mask predicts as foreground
    (sigmoid >= 0.5); a query with an empty foreground attends everywhere.

    Args:
        mask_pred: Mask logits, shape (B, Q, H, W).
        size: Target ``(H_l, W_l)``.
        num_heads: Heads the mask is repeated for, batch-major, as
            ``nn.MultiheadAttention`` takes it; None keeps one mask shared by
            all heads (what :class:`CrossAttentionLayer` takes fastest).

    Returns:
        Mask of shape (B, Q, H_l * W_l), or (B * num_heads, Q, H_l * W_l),
        True where blocked.
    """
    resized = mask_pred.detach()
    if tuple(resized.shape[-2:]) != tuple(size):
        resized = F.interpolate(resized, size=size, mode='bilinear', align_corners=False)
    blocked = resized.flatten(2) < 0.0  # sigmoid(x) < 0.5
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
    return blocked if num_heads is None else blocked.repeat_interleave(num_heads, dim=0)
