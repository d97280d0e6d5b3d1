"""The global tone stage, ``--tone auto`` (docs/MODEL.md, "Tone"): print ageing as a few physical numbers and
its analytic inverse (``physics``), the estimator that reads them from a thumbnail (``estimator``), its
training on the engine's ageing (``training``), loading and applying it (``inference``) and the tone table
it is judged by (``evaluation``)."""
