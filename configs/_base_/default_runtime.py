default_scope = 'mmseg_maskformer'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # 'nccl' on GPUs; tools/dist_train.sh switches to 'gloo' when no GPU is visible
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# a model num_classes that differs from the dataset's classes fails before training/testing
custom_hooks = [dict(type='NumClassesCheckHook')]
