# MaskFormer R-50 + 6 Enc, ADE20K panoptic (150 classes: 100 things + 50 stuff), official
# recipe: the ADE20K-150 R-50 recipe (8 GPUs x 2 images, AdamW lr 1e-4 with weight decay 1e-4,
# poly) for 720k iterations at crop 640, the "+ 6 Enc" pixel decoder, panoptic merge with
# object mask threshold 0.7 and overlap threshold 0.8. Paper: 34.7 PQ.
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_720k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        pixel_decoder=dict(type='TransformerEncoderPixelDecoder', num_encoder_layers=6,
                           feedforward_dims=2048, dropout=0.1),
        transformer_in_feature='transformer_encoder'),
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=False,
        object_mask_threshold=0.7,
        overlap_threshold=0.8,
        thing_class_ids={{_base_.thing_class_ids}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
# the official evaluation of this model: PQ and mIoU (no instance AP)
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
