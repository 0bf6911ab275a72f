"""Classification datasets: layout, checks, synthetic demo."""
