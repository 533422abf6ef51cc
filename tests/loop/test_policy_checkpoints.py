"""make_policy on the checkpoints training frameworks write: rsl_rl (Isaac Lab, Genesis), Lightning,
ProtoMotions and its Genesis fork. Each file is written here with torch.save in the layout of the
cited save code; the networks follow the cited module code (rsl_rl >= 4: the real package).

Sources:
- rsl_rl v2.3.3 ``rsl_rl/runners/on_policy_runner.py`` ``OnPolicyRunner.save`` (``model_state_dict``,
  ``optimizer_state_dict``, ``iter``, ``infos``, ``obs_norm_state_dict`` with empirical
  normalization) and ``get_inference_policy`` (``act_inference(obs_normalizer(x))``);
  ``rsl_rl/modules/actor_critic.py`` ``ActorCritic.__init__`` (``actor``/``critic`` Sequentials,
  ``std`` or ``log_std``), ``rsl_rl/modules/normalizer.py`` ``EmpiricalNormalization``.
- rsl_rl v3.3.0 ``rsl_rl/modules/actor_critic.py`` ``ActorCritic.__init__`` / ``act_inference``
  (``actor_obs_normalizer``, ``state_dependent_std``: ``MLP(..., [2, num_actions])``, mean
  ``[..., 0, :]``), ``rsl_rl/networks/mlp.py`` ``MLP.__init__``.
- rsl_rl 5.4.2 (installed with mjlab) ``rsl_rl/algorithms/ppo.py`` ``PPO.save``
  (``actor_state_dict``, ``critic_state_dict``, ``optimizer_state_dict``) and
  ``rsl_rl/runners/on_policy_runner.py`` ``OnPolicyRunner.save`` (adds ``iter``, ``infos``);
  ``rsl_rl/models/mlp_model.py`` ``MLPModel``.
- Lightning ``src/lightning/pytorch/trainer/connectors/checkpoint_connector.py``
  ``_CheckpointConnector.dump_checkpoint`` (``epoch``, ``global_step``,
  ``pytorch-lightning_version``, ``state_dict`` = the LightningModule's, ``loops``,
  ``optimizer_states``, ``lr_schedulers``, ``hyper_parameters``).
- hshintree/ProtoMotions-Genesis 80d20e3 ``protomotions/agents/ppo/agent.py`` ``PPO.get_state_dict``
  / ``save`` (``fabric.save``), ``protomotions/agents/ppo/model.py`` ``PPOActor`` / ``PPOModel.act``,
  ``protomotions/agents/common/mlp.py`` ``MultiHeadedMLP``; ``extras/rollout_recorder.py``
  ``make_policy`` (``PPO.load_from_checkpoint``: the fork's PPO is no LightningModule and has none).
- NVlabs/ProtoMotions 607ca7a0 ``protomotions/agents/base_agent/agent.py``
  ``BaseAgent.get_state_dict`` / ``get_inference_state_dict``, ``_load_model_state_dict``
  (``model.materialize_from_state_dict`` before ``load_state_dict``,
  ``agents/base_agent/model.py`` ``BaseModel``); the evaluator acts with ``model(obs_td)["mean_action"]``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rollrec.loop.policy import make_policy

torch.manual_seed(0)


def _mlp(sizes, act=nn.ELU, out_shape=None):
    """rsl_rl's MLP: Linear layers at even indices, the activation between them (networks/mlp.py)."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    if out_shape is not None:
        layers.append(nn.Unflatten(-1, out_shape))
    return nn.Sequential(*layers)


class EmpiricalNormalization(nn.Module):
    """rsl_rl's normalizer buffers (modules/normalizer.py, networks/normalization.py), with statistics set."""

    def __init__(self, n):
        super().__init__()
        self.register_buffer("_mean", torch.randn(1, n))
        self.register_buffer("_var", torch.rand(1, n) + 0.5)
        self.register_buffer("_std", self._var.sqrt())
        self.register_buffer("count", torch.tensor(4096))

    def forward(self, x):
        return (x - self._mean) / (self._std + 1e-2)


class ActorCriticV3(nn.Module):
    """rsl_rl v3.3.0 ActorCritic: actor, actor_obs_normalizer, critic, std/log_std (or a [2, A] head)."""

    def __init__(self, num_obs, num_actions, hidden=(32, 32), act=nn.ELU, state_dependent_std=False, log_std=False):
        super().__init__()
        self.state_dependent_std = state_dependent_std
        out = (2, num_actions) if state_dependent_std else None
        self.actor = _mlp([num_obs, *hidden, num_actions * (2 if out else 1)], act, out)
        self.actor_obs_normalizer = EmpiricalNormalization(num_obs)
        self.critic = _mlp([num_obs + 5, *hidden, 1], act)
        self.critic_obs_normalizer = nn.Identity()
        if not state_dependent_std:
            if log_std:
                self.log_std = nn.Parameter(torch.zeros(num_actions))
            else:
                self.std = nn.Parameter(torch.ones(num_actions))

    def act_inference(self, obs):
        x = self.actor_obs_normalizer(obs["policy"])
        return self.actor(x)[..., 0, :] if self.state_dependent_std else self.actor(x)


def _rsl_rl_save(path, policy, optimizer, **extra):
    """OnPolicyRunner.save (rsl_rl <= 3)."""
    torch.save({"model_state_dict": policy.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                "iter": 1500, "infos": None, **extra}, path)


@pytest.fixture
def td():
    tensordict = pytest.importorskip("tensordict")
    return tensordict.TensorDict({"policy": torch.randn(16, 48), "critic": torch.randn(16, 53)}, batch_size=[16])


def test_isaaclab_rsl_rl_v3_checkpoint_builds_the_actor(tmp_path, td):
    ac = ActorCriticV3(48, 12)
    _rsl_rl_save(tmp_path / "model_1500.pt", ac, torch.optim.Adam(ac.parameters()))
    policy = make_policy(tmp_path / "model_1500.pt")  # no module: the actor is rebuilt from the weights
    torch.testing.assert_close(policy(td), ac.act_inference(td), rtol=0, atol=0)
    assert policy(td).requires_grad is False
    assert not any(k.startswith("critic") for k in policy.module.state_dict())  # the actor only


def test_rsl_rl_state_dependent_std_and_other_activation(tmp_path, td):
    ac = ActorCriticV3(48, 12, act=nn.Tanh, state_dependent_std=True)
    _rsl_rl_save(tmp_path / "m.pt", ac, torch.optim.Adam(ac.parameters()))
    policy = make_policy(tmp_path / "m.pt", activation="tanh")
    torch.testing.assert_close(policy(td), ac.act_inference(td), rtol=0, atol=0)
    assert policy(td).shape == (16, 12)
    with pytest.raises(ValueError, match="activation='swoosh'"):
        make_policy(tmp_path / "m.pt", activation="swoosh")


def test_rsl_rl_v2_checkpoint_with_the_runners_normalizer(tmp_path):
    """rsl_rl 2.x: tensor obs, log_std, the normalizer outside the policy (obs_norm_state_dict)."""
    ac = ActorCriticV3(48, 12, log_std=True)
    norm = ac.actor_obs_normalizer
    del ac.actor_obs_normalizer  # 2.x ActorCritic has none: the runner keeps it
    _rsl_rl_save(tmp_path / "m.pt", ac, torch.optim.SGD(ac.parameters(), lr=1e-3),
                 obs_norm_state_dict=norm.state_dict(), privileged_obs_norm_state_dict=norm.state_dict())
    obs = torch.randn(16, 48)
    torch.testing.assert_close(make_policy(tmp_path / "m.pt")(obs), ac.actor(norm(obs)), rtol=0, atol=0)


def test_rsl_rl_checkpoint_into_the_users_actor_critic(tmp_path, td):
    ac = ActorCriticV3(48, 12)
    _rsl_rl_save(tmp_path / "m.pt", ac, torch.optim.Adam(ac.parameters()))
    mine = ActorCriticV3(48, 12)
    policy = make_policy(tmp_path / "m.pt", module=mine)  # OnPolicyRunner.get_inference_policy: act_inference
    torch.testing.assert_close(policy(td), ac.act_inference(td), rtol=0, atol=0)
    with pytest.raises(ValueError) as err:
        make_policy(tmp_path / "m.pt", module=ActorCriticV3(48, 12, hidden=(64, 64)))
    assert "actor.0.weight has shape (32, 48) in the checkpoint, (64, 48)" in str(err.value)
    assert "\n" not in str(err.value)


def test_rsl_rl_5_checkpoint_of_the_real_package(tmp_path, td):
    pytest.importorskip("rsl_rl")
    from rsl_rl.models import MLPModel

    groups = {"actor": ["policy"], "critic": ["policy", "critic"]}
    actor = MLPModel(td, groups, "actor", 12, hidden_dims=[32, 32], obs_normalization=True,
                     distribution_cfg={"class_name": "GaussianDistribution", "init_std": 0.5, "std_type": "log"})
    critic = MLPModel(td, groups, "critic", 1, hidden_dims=[32, 32])
    actor.train()
    for _ in range(3):
        actor.update_normalization(td.apply(lambda x: 3 * x + 1))
    actor.eval()
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()])
    torch.save({"actor_state_dict": actor.state_dict(), "critic_state_dict": critic.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(), "iter": 300, "infos": None}, tmp_path / "model_300.pt")
    policy = make_policy(tmp_path / "model_300.pt")
    with torch.no_grad():
        torch.testing.assert_close(policy(td), actor(td), rtol=0, atol=0)


def test_rsl_rl_recurrent_actor_needs_the_module(tmp_path):
    torch.save({"model_state_dict": {"memory_a.rnn.weight_ih_l0": torch.zeros(4, 3), "actor.0.weight": torch.zeros(2, 4),
                                     "actor.0.bias": torch.zeros(2), "std": torch.ones(2)}, "iter": 1}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="recurrent or convolutional actor.*pass module="):
        make_policy(tmp_path / "m.pt")


class LitPolicy(nn.Module):
    """A LightningModule's attributes: the policy network under ``model``, a loss with a buffer."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
        self.value_head = nn.Linear(6, 1)


def _lightning_save(path, lit):
    torch.save({"epoch": 7, "global_step": 7000, "pytorch-lightning_version": "2.5.0", "state_dict": lit.state_dict(),
                "loops": {}, "callbacks": {}, "optimizer_states": [], "lr_schedulers": [], "hparams_name": "kwargs",
                "hyper_parameters": {"hidden": 16, "lr": 3e-4}}, path)


def test_lightning_checkpoint_with_model_prefix(tmp_path):
    lit = LitPolicy()
    _lightning_save(tmp_path / "epoch=7.ckpt", lit)
    x = torch.randn(5, 6)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    policy = make_policy(tmp_path / "epoch=7.ckpt", module=net)  # "model." found and stripped
    torch.testing.assert_close(policy(x), lit.model(x), rtol=0, atol=0)
    head = nn.Linear(6, 1)
    torch.testing.assert_close(make_policy(tmp_path / "epoch=7.ckpt", module=head, prefix="value_head.")(x),
                               lit.value_head(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="pass module=.*LightningModule"):
        make_policy(tmp_path / "epoch=7.ckpt")


def test_a_state_dict_that_does_not_fit_is_one_line_naming_keys(tmp_path):
    _lightning_save(tmp_path / "m.ckpt", LitPolicy())
    wrong = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(ValueError) as err:
        make_policy(tmp_path / "m.ckpt", module=wrong)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "m.ckpt"))
    assert "missing 4.bias, 4.weight; unexpected none" in msg and "closest: keys under 'model.'" in msg
    with pytest.raises(ValueError, match=r"after stripping prefix='critic\.': missing 0\.bias, 0\.weight, "
                                         r"2\.bias \(\+3 more\); unexpected none"):
        make_policy(tmp_path / "m.ckpt", module=wrong, prefix="critic.")


class MultiHeadedMLP(nn.Module):
    """The fork's MultiHeadedMLP: input_models (a ModuleDict of obs encoders), then a trunk MLP."""

    def __init__(self, num_in, num_out):
        super().__init__()
        self.input_models = nn.ModuleDict({"self_obs": nn.Identity()})
        self.trunk = nn.Module()
        self.trunk.mlp = nn.Sequential(nn.Linear(num_in, 32), nn.ReLU(), nn.Linear(32, num_out))

    def forward(self, input_dict):
        return self.trunk.mlp(torch.cat([m(input_dict[k]) for k, m in self.input_models.items()], dim=-1))


class ForkPPOModel(nn.Module):
    """ProtoMotions-Genesis PPOModel: _actor (logstd, mu), _critic; act(input_dict, mean=True) -> tanh(mu)."""

    def __init__(self):
        super().__init__()
        self._actor = nn.Module()
        self._actor.logstd = nn.Parameter(torch.full((4,), -2.9), requires_grad=False)
        self._actor.mu = MultiHeadedMLP(10, 4)
        self._critic = MultiHeadedMLP(10, 1)

    def act(self, input_dict, mean=True):
        mu = torch.tanh(self._actor.mu(input_dict))
        return mu if mean else torch.distributions.Normal(mu, self._actor.logstd.exp()).sample()


def test_protomotions_genesis_fork_checkpoint(tmp_path):
    trained = ForkPPOModel()
    opt = torch.optim.Adam(trained.parameters())
    torch.save({"model": trained.state_dict(), "actor_optimizer": opt.state_dict(), "critic_optimizer": opt.state_dict(),
                "epoch": 120, "step_count": 3_000_000, "run_start_time": 1.7e9,
                "episode_reward_meter": {"mean": torch.zeros(1)}, "episode_length_meter": {"mean": torch.zeros(1)},
                "best_evaluated_score": None}, tmp_path / "last.ckpt")
    obs_dict = {"self_obs": torch.randn(8, 10)}
    policy = make_policy(tmp_path / "last.ckpt", module=ForkPPOModel())  # agent.model, built from config.yaml
    torch.testing.assert_close(policy(obs_dict), trained.act(obs_dict), rtol=0, atol=0)  # agent.model.act(obs_dict)
    with pytest.raises(ValueError, match="protomotions state dict; pass module= .the agent's model"):
        make_policy(tmp_path / "last.ckpt")


def test_protomotions_inference_checkpoint_acts_with_the_mean_action(tmp_path):
    tensordict = pytest.importorskip("tensordict")

    class Model(nn.Module):  # a TensorDictModule: forward(td) adds action, mean_action, value
        def __init__(self, lazy=False):
            super().__init__()
            if not lazy:
                self._actor = nn.Linear(10, 4)

        def materialize_from_state_dict(self, state_dict):  # BaseModel: create lazily-owned modules
            if not hasattr(self, "_actor"):
                self._actor = nn.Linear(state_dict["_actor.weight"].shape[1], state_dict["_actor.weight"].shape[0])

        def forward(self, td):
            mean = self._actor(td["obs"])
            return td.update({"mean_action": mean, "action": mean + 1})

    trained = Model()
    torch.save({"model": trained.state_dict(), "epoch": 3, "step_count": 9, "run_start_time": 0.0,
                "best_evaluated_score": 0.5}, tmp_path / "inference_last.ckpt")
    td = tensordict.TensorDict({"obs": torch.randn(8, 10)}, batch_size=[8])
    out = make_policy(tmp_path / "inference_last.ckpt", module=Model(lazy=True))(td.clone())  # as _load_model_state_dict
    torch.testing.assert_close(out, trained._actor(td["obs"]), rtol=0, atol=0)


def test_no_deserialisation_traceback_on_a_state_dict_load(tmp_path, capfd, caplog):
    net = nn.Linear(3, 2)
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    with caplog.at_level("DEBUG"):
        make_policy(tmp_path / "sd.pt", module=nn.Linear(3, 2))
    err = capfd.readouterr().err
    assert "Traceback" not in err and "deserializ" not in err
    assert not any("Traceback" in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a usable GPU")
def test_cuda_without_cuda_is_one_line(tmp_path):
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "sd.pt")
    for ckpt, kwargs in ((tmp_path / "sd.pt", {"module": nn.Linear(3, 2)}), (nn.Linear(3, 2), {})):
        with pytest.raises(RuntimeError) as err:
            make_policy(ckpt, device="cuda", **kwargs)
        assert str(err.value).startswith("make_policy: device='cuda'") and "CUDA" in str(err.value)
        assert "\n" not in str(err.value)


def test_objects_beyond_tensors_and_junk_are_one_line(tmp_path):
    torch.save({"state_dict": nn.Linear(3, 2).state_dict(), "hyper_parameters": {"net": nn.Linear(3, 2)}},
               tmp_path / "obj.ckpt")
    with pytest.raises(ValueError, match=r"holds Python objects beyond tensors \(first: torch.nn.modules.linear.Linear"
                                         r"\); if you trust the file, pass weights_only=False"):
        make_policy(tmp_path / "obj.ckpt", module=nn.Linear(3, 2))
    make_policy(tmp_path / "obj.ckpt", module=nn.Linear(3, 2), weights_only=False)
    (tmp_path / "junk.pt").write_bytes(b"\x80\x02junk")
    with pytest.raises(ValueError) as err:
        make_policy(tmp_path / "junk.pt", module=nn.Linear(3, 2))
    assert "not a TorchScript, torch.export or torch.save checkpoint" in str(err.value) and "\n" not in str(err.value)
