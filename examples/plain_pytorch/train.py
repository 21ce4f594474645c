"""A plain Hydra app with its own training loop: an MLP on scikit-learn's digits.

Nothing here imports seedhp. seedhp's sweepers drive it as they drive seedhp's own app:
    python train.py -m hydra/sweeper=seedhp_optuna hydra.sweeper.n_trials=10 \
        seed='range(0,20)' lr='tag(log, interval(0.001, 0.3))'
"""

import hydra
import mlflow
import torch
from omegaconf import DictConfig
from sklearn.datasets import load_digits


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    torch.manual_seed(cfg.seed)
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))  # fixed split
    train, val = order[:1400], order[1400:]
    model = torch.nn.Sequential(
        torch.nn.Linear(64, cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, 10)
    )
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    for epoch in range(1, cfg.epochs + 1):
        for batch in train[torch.randperm(len(train))].split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            opt.step()
        with torch.no_grad():
            val_acc = (model(x[val]).argmax(1) == y[val]).float().mean().item()
        mlflow.log_metric("val_acc", val_acc, step=epoch)  # lands in the seed-run under a sweep
    return {"val_acc": val_acc, "train_loss": loss.item()}


if __name__ == "__main__":
    main()
