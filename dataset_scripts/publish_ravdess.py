"""Convert ravdess to Parquet shards with embedded media + dataset card, and push it to a Hub dataset repo.

python dataset_scripts/publish_ravdess.py --source <folder or Hub repo> --repo_id <user>/<name> [--private] [--no_push]

"""

import logging

from mmder_hf.data.publish import publish_main


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    publish_main("ravdess")
