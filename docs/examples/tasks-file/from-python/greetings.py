def hello(who):
    print("hello from the", who)
