"""What a trained run gives back: evaluation (:mod:`~pyro_vrnn.report.evaluation`: ELBO, importance
sampling, SMC), samples (:mod:`~pyro_vrnn.report.sampling`), pictures (:mod:`~pyro_vrnn.report.plots`)
and the paper's comparison table (:mod:`~pyro_vrnn.report.compare`).

Imports the layers below it (data, models, infer, train); nothing below imports it.
"""
