"""LightningModule mixin: batches of view draws become pixels on the training device.

With ``runtime.augment = "device"`` the DataLoader yields only the random draws of
each view (cheap, no pixels); :meth:`DeviceAugment.on_after_batch_transfer` then
resamples the whole batch from a :class:`~medssl.data.batch_augment.SliceBank` held
on the device (on the GPU when it fits in 30 % of the free memory, else in host
memory). The bank is not part of the model state and is never checkpointed.
"""

from __future__ import annotations

import torch

from medssl.data.batch_augment import SliceBank, augment_batch, bank_device

# batch key of the draws → batch key of the resampled image
VIEW_KEYS = {"params": "image", "params1": "view1", "params2": "view2"}


class DeviceAugment:
    """Mixin for a LightningModule (put it before ``L.LightningModule`` in the bases)."""

    _bank: SliceBank | None = None
    _bank_size: int = 0
    _bank_placed_on: torch.device | None = None

    def attach_bank(self, bank: SliceBank | None, size: int) -> None:
        """Use ``bank`` to turn ``params*`` batch entries into ``size``-pixel views."""
        self._bank, self._bank_size = bank, size

    def _device_bank(self) -> SliceBank:
        """The bank, moved once to this module's device when it fits there."""
        bank = self._bank
        assert bank is not None
        if self._bank_placed_on != self.device:
            target = bank_device(bank, self.device)
            if bank.device != target:
                bank = self._bank = bank.to(target)
            self._bank_placed_on = self.device
        return bank

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        batch = super().on_after_batch_transfer(batch, dataloader_idx)
        if self._bank is None or not isinstance(batch, dict) or "row" not in batch:
            return batch
        bank = self._device_bank()
        with torch.no_grad():
            for key, name in VIEW_KEYS.items():
                if key not in batch:
                    continue
                labels = key == "params" and bank.labels is not None
                image, label = augment_batch(
                    bank, batch["row"], batch.pop(key), self._bank_size, labels
                )
                batch[name] = image.to(self.device, non_blocking=True)
                if label is not None:
                    batch["label"] = label.to(self.device, non_blocking=True)
        return batch
