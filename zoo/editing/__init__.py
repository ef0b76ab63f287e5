"""Image-editing operators (kind ``editor``) and editing "software" pipelines (kind ``software``).

Modules (one family each):

- :mod:`zoo.editing.color`: the reference editor's colour spaces (sRGB, ProPhoto gamma, logit, its own HSV).
- :mod:`zoo.editing.filters`: box, guided, min, bilateral filters (exact reference paths and O(HW) fast paths).
- :mod:`zoo.editing.base`: the operator contract (:class:`Operator`, :class:`ParamSpec`) and input checks.
- :mod:`zoo.editing.kosugi`: the 12 Lightroom "Basic panel" sliders of Kosugi & Yamasaki (AAAI 2020).
- :mod:`zoo.editing.exposure`: the differentiable filters of Hu et al., "Exposure" (ACM TOG 2018).
- :mod:`zoo.editing.software`: :class:`Software` (flat parameter vector, levels, named dicts, JSON sidecars).
- :mod:`zoo.editing.fused`: the fused, cache-chunked inference path of ``lightroom_basic`` (no autograd).

Nothing is imported here so that ``zoo list`` and the registry index stay light.
"""
