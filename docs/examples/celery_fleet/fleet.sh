celery -A fleet_celery worker --loglevel=INFO   # on each worker machine, beside fleet_jobs.py
python fleet_node.py                            # on each of the three scheduler hosts
