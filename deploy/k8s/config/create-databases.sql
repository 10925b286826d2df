-- Run once by the postgres image on an empty volume (POSTGRES_DB creates dagster): Optuna's and MLflow's.
CREATE DATABASE optuna OWNER adt;
CREATE DATABASE mlflow OWNER adt;
