"""Studies: pipelines registry, expansion, run store, launchers (local, SLURM), collection."""
