"""Energy sources, one per module (NVML with MIG slices, RAPL, AMD, Intel, Jetson, Apple
Silicon, estimates, device profiles, fakes) behind the :class:`~greentrack.meters.base.Meter`
protocol; the sysfs ones read under one root (:mod:`greentrack.meters.sysfs`)."""
