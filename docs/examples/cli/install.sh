pip install "asyncz[cli]"            # the command (sayer, click and rich)
pip install "asyncz[cli,postgres]"   # ... and what a PostgreSQL store needs
asyncz --version
