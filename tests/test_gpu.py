"""The same programs on a CUDA device (skipped without one)."""

import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam

from pyro_vrnn import RNN, STORN, VRNN, importance_estimate
from pyro_vrnn.train.trainer import Trainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("make", [lambda: VRNN(3, 2, 16, "gmm", guide="smoothing"), lambda: STORN(3, 2, 16),
                                  lambda: RNN(3, 16, "handwriting")])
def test_training_step_and_importance_sampling_stay_on_the_gpu(make):
    device = torch.device("cuda")
    model = make().to(device)
    x = torch.randn(4, 9, 3, device=device)
    x[..., 2] = (x[..., 2] > 0).float()
    mask = torch.ones(4, 9, dtype=torch.bool, device=device)
    mask[0, 5:] = False
    svi = SVI(model.model, model.guide, ClippedAdam({"lr": 1e-3}),
              Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1))
    assert torch.isfinite(torch.tensor(svi.step(x, mask)))
    assert all(p.device.type == "cuda" for p in model.parameters())
    est = importance_estimate(model.model, model.guide, x, mask, num_particles=64, chunk_size=16)
    assert est.log_likelihood.device.type == "cuda" and torch.isfinite(est.log_likelihood).all()
    assert model.generate(2, 5).device.type == "cuda"


def test_gpu_and_cpu_give_the_same_exact_rnn_likelihood():
    model = RNN(3, 16).double()
    x = torch.randn(3, 7, 3, dtype=torch.float64)
    cpu = importance_estimate(model.model, model.guide, x).log_likelihood
    model.cuda()
    gpu = importance_estimate(model.model, model.guide, x.cuda()).log_likelihood
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-8)


def test_trainer_fit_keeps_data_and_parameters_on_the_gpu():
    model = VRNN(3, 2, 16).cuda()
    trainer = Trainer(model, lr=1e-3)
    seqs = [torch.randn(n, 3) for n in (5, 9, 7, 3)]
    trainer.fit(seqs, num_steps=3, batch_size=2, progress=False)
    assert trainer.step_count == 3 and trainer.device.type == "cuda"
