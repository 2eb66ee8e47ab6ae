"""Builds toxicity.onnx from train_data.py, reproducibly (fixed seeds), and
reports precision/recall/F1 on data/eval.tsv beside the alt-profanity-check
baseline. Usage (scripts/build-toxicity-model.sh makes the venv):

    python models/toxicity/train.py            # train, export, evaluate
    python models/toxicity/train.py --eval-only # evaluate the checked-in model

Outputs, next to this file: toxicity.onnx, data/vectors.tsv (normaliser test
vectors for the Rust side), metrics.json."""

import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import features  # noqa: E402
import train_data  # noqa: E402

LABELS = train_data.LABELS
HIDDEN = 48
THRESHOLD = 0.5


def load_eval(path=os.path.join(HERE, "data", "eval.tsv")):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            labels, kind, text = line.rstrip("\n").split("\t")
            ls = set() if labels == "clean" else set(labels.split(","))
            assert ls <= set(LABELS), labels
            rows.append((ls, kind, text))
    return rows


def matrix(texts):
    indptr, indices, data = [0], [], []
    for t in texts:
        ids, w = features.features(t)
        indices.extend(ids)
        data.extend([w] * len(ids))
        indptr.append(len(indices))
    return sp.csr_matrix((np.array(data, dtype=np.float32), np.array(indices), np.array(indptr)),
                         shape=(len(texts), features.HASH_DIM))


def targets(label_sets):
    y = np.zeros((len(label_sets), len(LABELS)), dtype=np.int64)
    for i, ls in enumerate(label_sets):
        for l in ls:
            y[i, LABELS.index(l)] = 1
    return y


def export_onnx(clf, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1, w2 = clf.coefs_
    b1, b2 = clf.intercepts_
    # Rows of ids never seen in training keep their random initial weights: zero them so an
    # unknown feature contributes nothing (and the file compresses).
    inits = [
        numpy_helper.from_array(w1.astype(np.float16), "w1"),
        numpy_helper.from_array(b1.astype(np.float32), "b1"),
        numpy_helper.from_array(w2.astype(np.float32), "w2"),
        numpy_helper.from_array(b2.astype(np.float32), "b2"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Gather", ["w1", "ids"], ["rows16"], axis=0),  # [B, N, H]
        helper.make_node("Cast", ["rows16"], ["rows"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["weights", "axis2"], ["w3"]),  # [B, N, 1]
        helper.make_node("Mul", ["rows", "w3"], ["scaled"]),
        helper.make_node("ReduceSum", ["scaled", "axis1"], ["summed"], keepdims=0),  # [B, H]
        helper.make_node("Add", ["summed", "b1"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "w2"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "spaces_toxicity",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "n"]),
         helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", len(LABELS)])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="spaces")
    model.ir_version = 8
    for k, v in {"labels": ",".join(LABELS), "feature_version": str(features.FEATURE_VERSION),
                 "hash_dim": str(features.HASH_DIM)}.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, path)


def prf(y_true, y_pred):
    tp = int(((y_true == 1) & (y_pred == 1)).sum())
    fp = int(((y_true == 0) & (y_pred == 1)).sum())
    fn = int(((y_true == 1) & (y_pred == 0)).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}


def onnx_scores(path, texts):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = []
    for t in texts:
        ids, w = features.features(t)
        if not ids:
            ids, w = [0], 0.0
        res = sess.run(None, {"ids": np.array([ids], dtype=np.int64),
                              "weights": np.full((1, len(ids)), w, dtype=np.float32)})[0][0]
        out.append(res)
    return np.array(out)


def report(scores, y, kinds):
    pred = (scores >= THRESHOLD).astype(np.int64)
    res = {l: prf(y[:, i], pred[:, i]) for i, l in enumerate(LABELS)}
    res["any_toxic"] = prf(y.max(axis=1), pred.max(axis=1))
    res["micro"] = prf(y.reshape(-1), pred.reshape(-1))
    res["macro_f1"] = round(float(np.mean([res[l]["f1"] for l in LABELS])), 4)
    by_kind = {}
    for k in sorted(set(kinds)):
        idx = [i for i, kk in enumerate(kinds) if kk == k]
        exact = sum(1 for i in idx if (pred[i] == y[i]).all())
        by_kind[k] = {"lines": len(idx), "all_labels_right": exact}
    res["by_kind"] = by_kind
    return res


def baseline(texts, y):
    from profanity_check import predict_prob

    p = np.array(predict_prob(texts))
    any_true = y.max(axis=1)
    return prf(any_true, (p >= 0.5).astype(np.int64))


# Hard cases for the two normalisers to agree on, beyond the sampled lines.
VECTOR_EXTRAS = [
    "", "🙂🙂", "ÀÉÎÕÜ ßæœøłđ", "İstanbul ΣΊΣΥΦΟΣ", "fu\u200bck f\u00adu\u2060ck", "ｆｕｃｋ ＹＯＵ",
    "ѕtuріd іdіоt", "n̶i̶c̶e̶ z̷a̷l̷g̷o̷", "a  b  c d e", "a.b.c.d x y", "!!!wow!!! |x| *a* @@", "a$$h0le $5 100% 14/88",
    "aaaaaa bbbbbbbb ..... !!!!!", "日本語のテキスト 한국어 текст مرحبا", "f-u-c-k_y_o_u", "k.y.s!", "x" * 2100,
    "ᵏʸˢ ⓚⓨⓢ 𝐤𝐲𝐬", "tab\there\nnewline",
]


def write_vectors(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# text (JSON string) TAB tokens joined by space TAB joined runs TAB sorted feature ids; by train.py\n")
        for t in texts:
            toks, joined = features.tokens(t)
            ids, _ = features.features(t)
            f.write("\t".join([json.dumps(t, ensure_ascii=False), " ".join(toks), " ".join(joined),
                               " ".join(map(str, ids))]) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--vectors-only", action="store_true")
    args = ap.parse_args()
    model_path = os.path.join(HERE, "toxicity.onnx")
    ev = load_eval()
    ev_texts = [t for _, _, t in ev]
    ev_y = targets([ls for ls, _, _ in ev])
    ev_kinds = [k for _, k, _ in ev]

    rows = train_data.generate()
    tr_texts = [t for _, t in rows]
    # A generated line that happens to equal an evaluation line (short stock phrases: "kys",
    # "drink bleach") is dropped from training, so no evaluation line is ever trained on verbatim.
    blind_texts = [t for _, _, t in load_eval(os.path.join(HERE, "data", "eval_blind.tsv"))]
    ev_keys = {" ".join(features.tokens(t)[0]) for t in ev_texts + blind_texts}
    kept = [(ls, t) for ls, t in rows if " ".join(features.tokens(t)[0]) not in ev_keys]
    n_dropped = len(rows) - len(kept)
    rows = kept
    tr_texts = [t for _, t in rows]
    if not args.eval_only and not args.vectors_only:
        from sklearn.neural_network import MLPClassifier

        X = matrix(tr_texts)
        y = targets([ls for ls, _ in rows])
        t0 = time.time()
        clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), alpha=1e-4, batch_size=128, learning_rate_init=3e-3,
                            max_iter=40, random_state=17, tol=1e-5, n_iter_no_change=5)
        clf.fit(X, y)
        print(f"trained on {len(rows)} lines in {time.time() - t0:.1f}s", file=sys.stderr)
        # zero rows of ids that no training line uses
        used = np.zeros(features.HASH_DIM, dtype=bool)
        used[np.unique(X.indices)] = True
        clf.coefs_[0][~used] = 0.0
        export_onnx(clf, model_path)
    if not args.eval_only or args.vectors_only:
        write_vectors(os.path.join(HERE, "data", "vectors.tsv"), VECTOR_EXTRAS + ev_texts[::7] + tr_texts[::200])
    if args.vectors_only:
        return

    scores = onnx_scores(model_path, ev_texts)
    res = report(scores, ev_y, ev_kinds)
    res["baseline_alt_profanity_check_any_toxic"] = baseline(ev_texts, ev_y)
    blind = load_eval(os.path.join(HERE, "data", "eval_blind.tsv"))
    b_texts = [t for _, _, t in blind]
    b_res = report(onnx_scores(model_path, b_texts), targets([ls for ls, _, _ in blind]), [k for _, k, _ in blind])
    b_res["baseline_alt_profanity_check_any_toxic"] = baseline(b_texts, targets([ls for ls, _, _ in blind]))
    b_res["lines"] = len(blind)
    res["blind"] = b_res
    res["train_lines"] = len(rows)
    res["train_lines_dropped_as_equal_to_eval"] = n_dropped
    res["eval_lines"] = len(ev)
    # how close the evaluation set is to the training set: the share of evaluation lines whose
    # token set shares >= 80% (Jaccard) with some training line
    tr_sets = [set(features.tokens(t)[0]) for t in tr_texts]
    near = 0
    for t in ev_texts:
        s = set(features.tokens(t)[0])
        if any(len(s & u) / max(1, len(s | u)) >= 0.8 for u in tr_sets):
            near += 1
    res["eval_near_duplicates_of_training"] = near
    print(json.dumps(res, indent=1))
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(res, f, indent=1)
    errors = []
    pred = scores >= THRESHOLD
    for i, t in enumerate(ev_texts):
        if (pred[i].astype(int) != ev_y[i]).any():
            got = [l for j, l in enumerate(LABELS) if pred[i][j]]
            want = [l for j, l in enumerate(LABELS) if ev_y[i][j]]
            errors.append(f"want {want} got {got}: {t}")
    print(f"{len(errors)} evaluation lines with a wrong label set", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)


if __name__ == "__main__":
    main()
