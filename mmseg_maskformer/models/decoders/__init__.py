"""Transformer decoders (plain nn.Modules, built by the heads)."""
from .masked_attention_decoder import MaskedAttentionDecoder, masked_attention_mask

__all__ = ['MaskedAttentionDecoder', 'masked_attention_mask']
