"""The cluster board: nodes → ENIs → address slots → pods in a browser (the seed lab's step 7,
where EKS users open kube-ops-view).

sources.py reads what only a node can tell (its ipamd's introspection, from inside the node's
namespace) and what EC2 knows (ENIs, addresses, prefixes); board.py turns those and the Kubernetes
objects into one JSON snapshot; server.py serves the page, the snapshot and nothing else on
127.0.0.1; command.py is `minieks board`. The page (static/) is plain HTML, CSS and JavaScript.
"""
