"""A control API client in Python (grpcio), to show the API is usable from other languages.

Usage: python3 python_client.py PROTOS_DIR SERVER_ADDRESS
The token comes from the ECSNET_TOKEN environment variable. The script compiles control.proto with grpc_tools,
submits a tiny synthetic experiment, watches it until training steps arrive, stops it, watches it to its end, and
prints one JSON object per line of what it saw (the C# test reads them).
"""
import json
import os
import sys
import tempfile

from grpc_tools import protoc
import grpc


def main():
    protos, address = sys.argv[1], sys.argv[2]
    token = os.environ["ECSNET_TOKEN"]
    out = tempfile.mkdtemp(prefix="ecsnet-py-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(["protoc", "-I" + protos, "-I" + include, "--python_out=" + out, "--grpc_python_out=" + out,
                      os.path.join(protos, "control", "v1", "control.proto")])
    if rc != 0:
        raise SystemExit("protoc failed with %d" % rc)
    sys.path.insert(0, out)
    from control.v1 import control_pb2 as pb
    from control.v1 import control_pb2_grpc as rpc
    from google.protobuf import json_format

    auth = [("authorization", "Bearer " + token)]
    stub = rpc.ControlStub(grpc.insecure_channel(address))

    # without the token: refused
    try:
        stub.ListRuns(pb.ListRunsRequest())
        print(json.dumps({"event": "unauthenticated-call-accepted"}))
    except grpc.RpcError as e:
        print(json.dumps({"event": "refused", "code": e.code().name}))

    experiment = json_format.ParseDict({
        "name": "from-python",
        "dataset": {"synthetic": {"trainImages": 8, "valImages": 2, "size": 64, "seed": 7}},
        "stages": ["cam"],
        "workers": 1,
        "hyperparameters": {"camTraining": {"epochs": 50, "batchSize": 4, "crop": 64},
                            "camInference": {"scales": [1.0]}},
    }, pb.Experiment())
    run = stub.SubmitExperiment(pb.SubmitExperimentRequest(experiment=experiment), metadata=auth, timeout=60)
    print(json.dumps({"event": "submitted", "run": run.id, "state": pb.RunState.Name(run.state)}))

    for e in stub.WatchRun(pb.RunRef(run=run.id), metadata=auth, timeout=240):
        if e.run.step >= 1 and len(e.losses) > 0:
            print(json.dumps({"event": "step", "step": e.run.step, "loss": e.losses[0].value}))
            break

    stopped = stub.StopRun(pb.RunRef(run=run.id), metadata=auth, timeout=60)
    print(json.dumps({"event": "stop", "state": pb.RunState.Name(stopped.state)}))
    last = None
    for e in stub.WatchRun(pb.RunRef(run=run.id), metadata=auth, timeout=240):
        last = e
    print(json.dumps({"event": "ended", "state": pb.RunState.Name(last.run.state), "step": last.run.step}))


if __name__ == "__main__":
    main()
