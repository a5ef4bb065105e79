"""Convert iemocap to Parquet shards with embedded media + dataset card, and push it to a Hub dataset repo.

    python dataset_scripts/publish_iemocap.py --source <folder or Hub repo> --repo_id <user>/<name> \
        [--private] [--no_push]

IEMOCAP's licence (USC release form) forbids redistribution: the command refuses to push without --private,
and the repository must only be shared with people who signed the release form.
"""

import logging

from mmder_hf.data.publish import publish_main


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    publish_main("iemocap")
