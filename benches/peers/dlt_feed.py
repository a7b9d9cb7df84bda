"""dlt on the benchmark feed: the same paged API into DuckDB, merged on the primary key `id`.

Usage: python dlt_feed.py FEED_URL DUCKDB_FILE  (prints the number of records it read)
"""
import os
import sys

import dlt
import requests

url, database = sys.argv[1], sys.argv[2]
count = 0


@dlt.resource(name="feed", primary_key="id", write_disposition="merge")
def feed():
    global count
    session = requests.Session()
    page = 1
    while True:
        body = session.get(url, params={"page": page}).json()
        items = body["data"]["items"]
        if not items:
            return
        count += len(items)
        yield items
        if body.get("next") is None:
            return
        page += 1


pipeline = dlt.pipeline(
    pipeline_name="syncline_bench",
    destination=dlt.destinations.duckdb(database),
    dataset_name="feed_data",
    pipelines_dir=os.path.join(os.environ.get("DLT_DATA_DIR", "."), "pipelines"),
)
pipeline.run(feed(), loader_file_format="parquet")
print(count)
