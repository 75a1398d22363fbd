"""The predictor's answers are defined once (``predictor.answers``): its response models build
them, forbid fields they do not declare, and the OpenAPI schema at ``/openapi.json`` describes
every field a real answer has."""

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from dashboard.choose import choose_run
from predictor.answers import ImagePrediction, PredictOut, ReadyOut, ServedOut
from tests.predictor.conftest import AUTH, get_ready, post_images, wait_ready

IMAGE = {
    "file": "scan.png",
    "predicted_class": "a",
    "decision": None,
    "probabilities": {"a": 0.7, "b": 0.3},
    "ood_score": None,
    "out_of_distribution": None,
    "input_note": None,
}
SERVED = {
    "model_name": "clf",
    "alias": "champion",
    "version": "1",
    "run_id": "ab12",
    "stale": False,
    "problem": None,
    "operating_point": None,
    "decoding_note": None,
    "modalities": None,
    "modality_note": None,
    "ood_check": None,
}
READY = {**SERVED, "status": "ready", "class_names": ["a", "b"], "loaded_at": datetime.now(UTC)}


def validator(schema: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator of the component ``name`` of the OpenAPI ``schema`` (its refs resolved)."""
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": schema["components"]}
    )


@pytest.mark.parametrize(
    ("model", "answer"),
    [(ImagePrediction, IMAGE), (ServedOut, SERVED), (ReadyOut, READY)],
    ids=["image", "served", "ready"],
)
def test_an_answer_model_refuses_a_field_it_does_not_declare_and_one_left_out(
    model: type[BaseModel], answer: dict
):
    model(**answer)  # exactly its fields: built
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        model(**answer, confidence=0.9)  # added where the answer is built, not to the model
    for name in answer:  # each field set where built: none falls back to a default
        with pytest.raises(ValidationError, match=name):
            model(**{k: v for k, v in answer.items() if k != name})


def test_real_answers_validate_against_the_models_and_the_openapi_schema(
    predictor, settings, served_runs, demo_data
):
    schema = requests.get(f"{predictor}/openapi.json", headers=AUTH, timeout=10).json()
    choose_run(served_runs[0], "serve it", settings, allow_unevaluated=True)
    wait_ready(predictor, "1")
    images = sorted((demo_data / "test").rglob("*.png"))[:2]
    predicted = post_images(predictor, images)
    ready = get_ready(predictor)
    assert predicted.status_code == 200 and ready.status_code == 200, predicted.text
    for answer, model in ((predicted.json(), PredictOut), (ready.json(), ReadyOut)):
        model.model_validate(answer)  # no field the model lacks, none it has left out
        errors = [e.message for e in validator(schema, model.__name__).iter_errors(answer)]
        assert errors == [], f"{model.__name__}: {errors}"
        properties = schema["components"]["schemas"][model.__name__]["properties"]
        assert set(properties) == set(answer) == set(model.model_fields)
    image = schema["components"]["schemas"]["ImagePrediction"]
    assert image["additionalProperties"] is False
    assert set(image["required"]) == set(predicted.json()["predictions"][0])


def test_the_schema_refuses_an_answer_with_a_field_it_does_not_describe(predictor):
    schema = requests.get(f"{predictor}/openapi.json", headers=AUTH, timeout=10).json()
    answer = {**SERVED, "predictions": [{**IMAGE, "confidence": 0.9}]}
    errors = list(validator(schema, "PredictOut").iter_errors(answer))
    assert [e.message for e in errors] == [
        "Additional properties are not allowed ('confidence' was unexpected)"
    ]
