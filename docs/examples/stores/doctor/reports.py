def nightly():
    print("nightly report")
