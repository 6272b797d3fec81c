asyncz start --config examples/tasks.toml            # run the example service
asyncz start --config tasks.toml --watch             # and apply the file again whenever it changes
