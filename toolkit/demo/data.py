"""Deterministic synthetic data shaped like the mission's examples (same seed, same frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["churn_frame", "oj_sales_frame", "write_oj_weekly_files", "CHURN_FEATURES", "OJ_FEATURES"]

CHURN_FEATURES = [
    "age", "tenure_months", "products_purchased", "days_since_last_purchase",
    "monthly_spend", "support_calls", "is_premium", "region",
]
OJ_FEATURES = ["store", "brand", "week", "price", "promotion", "temperature"]
REGIONS = ["north", "south", "east", "west"]
BRANDS = ["tropicana", "minute_maid", "dominicks"]


def churn_frame(n: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Customers with a ``churned`` label driven by recency, tenure and support calls."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype("int64"),
        "tenure_months": rng.integers(0, 120, n).astype("int64"),
        "products_purchased": rng.poisson(4, n).astype("int64"),
        "days_since_last_purchase": rng.integers(0, 365, n).astype("int64"),
        "monthly_spend": rng.gamma(2.0, 30.0, n).round(2),
        "support_calls": rng.poisson(1.2, n).astype("int64"),
        "is_premium": rng.integers(0, 2, n).astype("int64"),
        "region": rng.choice(REGIONS, n),
    })
    logit = (
        0.012 * df.days_since_last_purchase - 0.03 * df.tenure_months + 0.5 * df.support_calls
        - 0.2 * df.products_purchased - 0.8 * df.is_premium + (df.region == "south") * 0.4 - 1.0
    )
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    return df


def oj_sales_frame(weeks: int = 52, stores: int = 40, seed: int = 11, start_week: int = 1) -> pd.DataFrame:
    """Weekly orange-juice unit sales per store and brand, with price, promotion and weather."""
    rng = np.random.default_rng(seed)
    rows = []
    for week in range(start_week, start_week + weeks):
        season = np.sin(2 * np.pi * week / 52)
        for store in range(1, stores + 1):
            for b, brand in enumerate(BRANDS):
                price = round(float(rng.uniform(1.5, 3.9)), 2)
                promo = int(rng.random() < 0.25)
                temp = round(float(18 + 10 * season + rng.normal(0, 3)), 1)
                base = [9000, 7000, 5000][b] * (1 + 0.002 * store)
                sales = base * np.exp(-0.35 * price) * (1.4 if promo else 1.0) * (1 + 0.01 * temp)
                rows.append((store, brand, week, price, promo, temp, round(float(sales * rng.lognormal(0, 0.08)), 1)))
    df = pd.DataFrame(rows, columns=[*OJ_FEATURES, "sales"])
    return df.astype({"store": "int64", "week": "int64", "promotion": "int64"})


def write_oj_weekly_files(folder: str | Path, weeks: int = 52, stores: int = 40, fmt: str = "csv") -> list[Path]:
    """One file per week (the features only, as a scoring job receives them)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    df = oj_sales_frame(weeks=weeks, stores=stores, seed=23)
    paths = []
    for week, part in df.groupby("week", sort=True):
        p = out / f"week-{int(week):02d}.{fmt}"
        part = part[OJ_FEATURES].reset_index(drop=True)
        part.to_csv(p, index=False) if fmt == "csv" else part.to_parquet(p, index=False)
        paths.append(p)
    return paths
