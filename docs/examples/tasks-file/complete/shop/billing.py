def run_invoices():
    print("invoicing")
