"""Mixed-precision optimizer wrapper that works on CPU and GPU.

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU. This wrapper
runs the forward pass under ``torch.autocast`` on the device the model is on
(bf16 or fp16 on CPU, either on CUDA) and scales the loss only for fp16, where
gradients can underflow; bf16 has the range of fp32 and needs no scaling.
"""
from contextlib import contextmanager
from typing import Iterator, Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from mmseg_maskformer.registry import OPTIM_WRAPPERS

_DTYPES = {'float16': torch.float16, 'bfloat16': torch.bfloat16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` with autocast (and fp16 loss scaling) on any device.

    Args:
        dtype: ``'bfloat16'`` or ``'float16'``.
        loss_scale: ``'dynamic'`` or a fixed float; used for fp16 only.
        **kwargs: Arguments of :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype: str = 'bfloat16', loss_scale: Union[str, float] = 'dynamic',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if dtype not in _DTYPES:
            raise ValueError(f'dtype must be one of {sorted(_DTYPES)}, got {dtype!r}')
        self.cast_dtype = _DTYPES[dtype]
        # the model's device is read again when training starts (optim_context)
        self.device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
        use_scaler = self.cast_dtype == torch.float16
        init_scale = 2.0**16 if loss_scale == 'dynamic' else float(loss_scale)
        self._scaler_kwargs = dict(init_scale=init_scale, enabled=use_scaler)
        if loss_scale != 'dynamic':
            self._scaler_kwargs.update(growth_interval=2**31 - 1)
        self.loss_scaler = None

    def _scaler(self) -> torch.amp.GradScaler:
        if self.loss_scaler is None:
            self.loss_scaler = torch.amp.GradScaler(self.device_type, **self._scaler_kwargs)
        return self.loss_scaler

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Scaled backward (no scaling for bf16)."""
        self._scaler().scale(loss).backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs) -> None:
        """Unscale, clip (if configured), step and update the scale."""
        scaler = self._scaler()
        if self.clip_grad_kwargs:
            scaler.unscale_(self.optimizer)
            self._clip_grad()
        scaler.step(self.optimizer, **kwargs)
        scaler.update()

    def state_dict(self) -> dict:
        state = self.optimizer.state_dict()
        state['loss_scaler'] = self._scaler().state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scaler_state = state_dict.pop('loss_scaler', None)
        if scaler_state:
            self._scaler().load_state_dict(scaler_state)
        self.optimizer.load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of the parent plus autocast."""
        param = next(model.parameters(), None)
        self.device_type = param.device.type if param is not None else 'cpu'
        with super().optim_context(model), torch.autocast(device_type=self.device_type,
                                                          dtype=self.cast_dtype):
            yield
