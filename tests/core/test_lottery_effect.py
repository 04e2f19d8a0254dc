"""The science test: IMP on mnist1d finds a ticket that beats random re-initialisation of its own mask.

The lottery ticket hypothesis' central control (Frankle & Carbin 2019): keep a winning ticket's mask, draw a
fresh init, retrain with the same recipe; the ticket should train to a clearly higher accuracy. Here: a
LeNet-style MLP [40, 300, 100, 10] on mnist1d, Adam 1.2e-3, batch 60, 2,000 iterations, layer-wise pruning
20% per round (output layer 10%), rewinding to iteration 0, 11 rounds (9.1% of the weights left). The
ticket found with seed 0 and its re-initialisation (fresh inits from seeds 1001-1003) are each retrained with
data-order seeds 1, 2, 3 and their mean final test accuracies compared.

Calibration (2-core CPU, one torch thread, the same setup with the IMP seed varied; mean +- std over the
three retraining seeds): IMP seed 0: ticket 64.0 +- 0.8, reinit 52.7 +- 1.0, random mask (same per-layer
density) 50.3 +- 1.0; IMP seed 1: ticket 63.1 +- 0.7, reinit 52.2 +- 1.0, random mask 49.8 +- 0.4. The
gap (about 11 points; 7.3 with 4,000 iterations, where the notes measured 5.6) is more than twice
MIN_GAP, and the test fails when the ticket is no better than its re-initialised mask (a random mask of the
same density trains to below the reinit here).
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from ticketclient import data, format, models, pruning, training

ARCHITECTURE = {"family": "mlp", "args": {"hidden": [300, 100]}}
ITERATIONS = 2000
ROUNDS = 11
RETRAIN_SEEDS = (1, 2, 3)
#: Minimum mean advantage of the ticket over its re-initialised mask, in accuracy (fraction).
MIN_GAP = 0.05


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _retrain(bundle: format.TicketBundle, task: data.TaskData, seed: int) -> float:
    model = models.load_tensors(models.build_model(bundle.config.resolve()), bundle.init)
    return training.train(model, bundle.mask, task, bundle.config.recipe, seed=seed, device="cpu",
                          progress=False).final_test_accuracy


@pytest.mark.slow
def test_imp_ticket_beats_random_reinitialisation_of_its_mask():
    task = data.load("mnist1d")
    recipe = format.Recipe.from_dict({"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60,
                                      "iterations": ITERATIONS, "eval_every": ITERATIONS})
    bundles = pruning.find_ticket("mnist1d", ARCHITECTURE, recipe, rounds=ROUNDS,
                                  strategy=pruning.Layerwise(0.2, 0.1), seed=0, data=task, progress=False,
                                  device="cpu")
    ticket = bundles[-1]
    assert ticket.density <= 0.10

    ticket_acc = [_retrain(ticket, task, s) for s in RETRAIN_SEEDS]
    reinit_acc = [_retrain(pruning.reinit_control(ticket, 1000 + s), task, s) for s in RETRAIN_SEEDS]
    gap = statistics.mean(ticket_acc) - statistics.mean(reinit_acc)
    print(f"\ndensity {ticket.density:.4f}, dense {ticket.config.provenance.dense_test_accuracy:.4f}: "
          f"ticket {np.mean(ticket_acc):.4f} +- {np.std(ticket_acc):.4f} {ticket_acc}, "
          f"reinit {np.mean(reinit_acc):.4f} +- {np.std(reinit_acc):.4f} {reinit_acc}, gap {gap:.4f}")
    assert gap >= MIN_GAP, (
        f"the ticket ({statistics.mean(ticket_acc):.4f}) should beat its re-initialised mask "
        f"({statistics.mean(reinit_acc):.4f}) by at least {MIN_GAP:.2f}")
