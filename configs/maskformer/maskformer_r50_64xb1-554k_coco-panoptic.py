# MaskFormer R-50 + 6 Enc, COCO panoptic (133 classes), official recipe: 64 GPUs x 1 image,
# 554,400 iterations (300 epochs) with the DETR augmentation, AdamW lr 1e-4 with weight decay
# 1e-4, learning rate x0.1 at 369,600. "+ 6 Enc": six transformer encoder layers on res5 in the
# pixel decoder, whose output the transformer decoder reads. Panoptic merge with object mask
# and overlap thresholds 0.8. Paper: 46.5 PQ, 45M parameters.
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/coco_panoptic_detr.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        pixel_decoder=dict(type='TransformerEncoderPixelDecoder', num_encoder_layers=6,
                           feedforward_dims=2048, dropout=0.1),
        transformer_in_feature='transformer_encoder'),
    # the paper reports PQ only; the semantic and instance outputs feed the base's mIoU and AP
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=True,
        object_mask_threshold=0.8,
        overlap_threshold=0.8,
        thing_class_ids={{_base_.thing_class_ids}}))
train_dataloader = dict(batch_size=1)
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
max_iters = 554400
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[369600],
         gamma=0.1)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)  # evaluated once, at the end
