"""Ground-truth datasets: the registry by name and the data folder."""
