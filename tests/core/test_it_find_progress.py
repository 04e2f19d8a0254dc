"""IMP shows progress inside each round (iterations), not only a bar of rounds."""

from __future__ import annotations

import dataclasses

from ticketclient import pruning, spec


def test_find_shows_the_iterations_of_every_round(capsys):
    recipe = dataclasses.replace(spec.FAMILIES["mlp"].default_recipe, iterations=30, eval_every=10)
    pruning.find_ticket("mnist1d", {"family": "mlp", "args": {"hidden": [16]}}, recipe, rounds=2,
                        strategy=pruning.Layerwise(0.5, 0.25), seed=0, progress=True, device="cpu")
    err = capsys.readouterr().err
    assert "IMP" in err and "dense" in err and "round 1/2" in err and "round 2/2" in err
    assert "30/30" in err  # the iteration bar of a round ran to the end
