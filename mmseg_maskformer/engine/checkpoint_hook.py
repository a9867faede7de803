"""Checkpoints that a kill at any moment cannot corrupt.

mmengine's ``CheckpointHook`` writes ``iter_N.pth`` in place, then overwrites
``last_checkpoint`` in place, and with ``max_keep_ckpts`` deletes the oldest
checkpoint *before* writing the new one. A process killed (SIGKILL, node
failure, out of memory) during any of these steps can leave a truncated
``iter_N.pth``, an empty ``last_checkpoint``, or, with ``max_keep_ckpts=1``, no
checkpoint at all, and ``--resume`` then fails.

:class:`AtomicCheckpointHook` writes each file to a hidden temporary file in
the same directory, flushes and fsyncs it, renames it onto the final name with
``os.replace`` (atomic on POSIX and Windows within one file system) and fsyncs
the directory; ``last_checkpoint`` is updated the same way, only after the
checkpoint is complete, and outdated checkpoints are deleted last. At any
moment the final names hold either the previous or the new complete file.

Use it in ``default_hooks`` of a config::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                                         interval=5000, max_keep_ckpts=3))

Non-local backends (``backend_args`` for s3/petrel) keep mmengine's behaviour:
an object store's ``put`` is atomic already.
"""
import glob
import os
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmseg_maskformer.registry import HOOKS

__all__ = ['AtomicCheckpointHook', 'atomic_write_text', 'commit_file', 'TMP_SUFFIX']

#: Suffix of the hidden temporary files (``.<name><TMP_SUFFIX>``).
TMP_SUFFIX = '.tmp'


def temporary_name(filename: str) -> str:
    """Hidden temporary name of ``filename`` in the same directory."""
    return f'.{filename}{TMP_SUFFIX}'


def _fsync_dir(dirname: str) -> None:
    """Flushes a directory entry change (a rename) to disk, where supported."""
    if os.name != 'posix':
        return
    fd = os.open(dirname or '.', os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp_path: str, final_path: str) -> None:
    """Makes a completely written temporary file durable, then renames it.

    Args:
        tmp_path: The written temporary file, in the directory of ``final_path``.
        final_path: The name it gets; an existing file is replaced atomically.
    """
    with open(tmp_path, 'rb+') as file:
        os.fsync(file.fileno())
    os.replace(tmp_path, final_path)
    _fsync_dir(osp.dirname(final_path))


def atomic_write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` so that readers see the old or the new text.

    Args:
        path: Destination file.
        text: Its new content.
    """
    tmp_path = osp.join(osp.dirname(path), temporary_name(osp.basename(path)))
    try:
        with open(tmp_path, 'w') as file:
            file.write(text)
            file.flush()
        commit_file(tmp_path, path)
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints and ``last_checkpoint`` are written atomically.

    Takes the arguments of mmengine's ``CheckpointHook``. Order of a save:
    checkpoint to a temporary file → fsync → rename → ``last_checkpoint`` the
    same way → delete checkpoints beyond ``max_keep_ckpts``. Temporary files
    left by a killed run are deleted before training starts.
    """

    def before_train(self, runner) -> None:
        """Sets up the backend as mmengine does, then removes stale temporary files."""
        super().before_train(runner)
        if self._is_local() and is_main_process():
            for directory in {self.out_dir, runner.work_dir}:
                for stale in glob.glob(osp.join(directory, f'.*{TMP_SUFFIX}')):
                    os.remove(stale)

    def _is_local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def _update_keep_ids(self, runner, step: int) -> List[int]:
        """Records ``step`` among the kept checkpoints; returns the steps to delete."""
        if self.max_keep_ckpts <= 0:
            return []
        if len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step:
            return []  # saved again in the same step (best checkpoint update)
        outdated = []
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return outdated

    def _remove_checkpoints(self, steps: List[int], keep: Optional[str]) -> None:
        """Deletes the checkpoints of ``steps`` (except the file ``keep``)."""
        for step in steps:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
            if path == keep:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed checkpoints are folders
                self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        """Saves the checkpoint of ``step`` atomically (see class docstring)."""
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = self._update_keep_ids(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_path = self.file_backend.join_path(self.out_dir, temporary_name(filename))
        try:
            runner.save_checkpoint(
                self.out_dir, temporary_name(filename), self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if not is_main_process():
                return
            commit_file(tmp_path, self.last_ckpt)
        finally:
            if is_main_process() and osp.exists(tmp_path):
                os.remove(tmp_path)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        self._remove_checkpoints(outdated, keep=self.last_ckpt)
