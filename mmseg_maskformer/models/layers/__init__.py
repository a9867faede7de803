"""Building blocks shared by pixel decoders, decoders and losses."""
from .ms_deform_attn import MSDeformAttn, ms_deform_attn_core
from .point_sample import mask_uncertainty, point_sample, sample_uncertain_points
from .positional_encoding import SinePositionalEncoding
from .transformer import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, feed_forward

__all__ = [
    'MSDeformAttn', 'ms_deform_attn_core', 'point_sample', 'sample_uncertain_points',
    'mask_uncertainty', 'SinePositionalEncoding', 'MLP', 'CrossAttentionLayer', 'FFNLayer',
    'SelfAttentionLayer', 'feed_forward'
]
