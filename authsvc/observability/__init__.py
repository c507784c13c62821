"""What authsvc tells its operators about itself: the Prometheus metrics (``metrics``). No
Flask and no database here: every layer may count into it."""
