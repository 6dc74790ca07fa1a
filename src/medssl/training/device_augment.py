"""Batches of view draws become pixels on the training device.

With ``runtime.augment = "device"`` the DataLoader yields only the random draws of
each view (cheap, no pixels); a module's :class:`DeviceAugment` helper then resamples
the whole batch from a :class:`~medssl.data.batch_augment.SliceBank` held on the
device (on the GPU when it fits in 30 % of the free memory, else in host memory),
called from the module's ``on_after_batch_transfer``. The bank is not part of the
model state and is never checkpointed (the helper has no checkpoint state).
"""

from __future__ import annotations

import torch

from medssl.data.batch_augment import SliceBank, augment_batch, bank_device

# batch key of the draws → batch key of the resampled image
VIEW_KEYS = {"params": "image", "params1": "view1", "params2": "view2"}


class DeviceAugment:
    """Owned helper of a LightningModule: ``batch = self.device_augment(batch, self.device)``.

    Args:
        bank: the slices (and labels) to resample from; ``None`` passes batches through
            (``runtime.augment = "workers"``: the workers made the pixels).
        size: side of the resampled views in pixels.
    """

    def __init__(self, bank: SliceBank | None, size: int) -> None:
        self.bank, self.size = bank, size
        self._placed_on: torch.device | None = None

    def _device_bank(self, device: torch.device) -> SliceBank:
        """The bank, moved once to ``device`` when it fits there."""
        bank = self.bank
        assert bank is not None
        if self._placed_on != device:
            target = bank_device(bank, device)
            if bank.device != target:
                bank = self.bank = bank.to(target)
            self._placed_on = device
        return bank

    def __call__(self, batch, device: torch.device):
        """Replace each ``params*`` entry of ``batch`` by its views (and ``label``)."""
        if self.bank is None or not isinstance(batch, dict) or "row" not in batch:
            return batch
        bank = self._device_bank(device)
        with torch.no_grad():
            for key, name in VIEW_KEYS.items():
                if key not in batch:
                    continue
                labels = key == "params" and bank.labels is not None
                image, label = augment_batch(bank, batch["row"], batch.pop(key), self.size, labels)
                batch[name] = image.to(device, non_blocking=True)
                if label is not None:
                    batch["label"] = label.to(device, non_blocking=True)
        return batch
