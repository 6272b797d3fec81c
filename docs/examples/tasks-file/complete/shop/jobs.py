def sync_orders(batch=100):
    print("syncing", batch, "orders")
