"""Energy sources, one per module (NVML, RAPL, estimates, device profiles, fakes) behind
the :class:`~greentrack.meters.base.Meter` protocol."""
