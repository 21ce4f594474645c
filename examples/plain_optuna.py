"""Plain Optuna and PyTorch, no Hydra: an MLP on digits, each learning rate on 3 shared seeds.
`python examples/plain_optuna.py` writes outputs/optuna.db, outputs/mlflow.db and the report."""

import mlflow
import optuna
import torch
from sklearn.datasets import load_digits

import seedhp

torch.set_num_threads(1)  # a model this small trains fastest on one thread
x, y = load_digits(return_X_y=True)
x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # one fixed split
train, val = order[:1400], order[1400:]


def objective(trial: optuna.Trial, seed: int) -> float:
    lr = trial.suggest_float("lr", 1e-3, 1.0, log=True)
    torch.manual_seed(seed)  # the seed: the initial weights and the order of the examples
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(1, 6):
        for batch in train[torch.randperm(len(train))].split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
        with torch.no_grad():
            val_acc = (model(x[val]).argmax(1) == y[val]).float().mean().item()
        mlflow.log_metric("val_acc", val_acc, step=epoch)  # into this seed's MLflow run
    return val_acc


if __name__ == "__main__":
    study = seedhp.optimize(objective, n_trials=6, strategy="averaged", seeds_per_trial=3,
                            objective_key="val_acc", storage="sqlite:///outputs/optuna.db",
                            study_name="plain-optuna", sampler_seed=0)  # fmt: skip
    print(f"best lr {study.best_params['lr']:.4g}, val_acc {study.best_value:.4f} over 3 seeds")
    print(f"Report: {seedhp.report(study)}")
