"""What the lineage check compares: every user-authored turn of a training example (an evaluation question hidden
in an earlier turn was missed), an evaluation example's whole question (API-Bank dialogues were refused because
their last turns are shared boilerplate), tool results and few-shot exemplars left out."""

import json
import shutil

import pytest

from langmix.data.api_data import load_apibank, load_apibank_schemas
from langmix.data.files import DataFormatError
from langmix.data.math_data import math_example
from langmix.data.sources import check_task_examples
from langmix.lineage import LineageError, check_lineage, lineage
from langmix.records import Example
from tests.shared_data import shared

Q = "Anna has 17 apples. Then Anna buys 6 more apples and 2 more pears. How many apples does Anna have now?"
OTHER = "Tom has 12 apples and gives away 5 of them to his friends after school. How many are left?"
EXEMPLARS = [("Roger has 5 balls. He buys 2 more. How many balls does he have now?", "5 + 2 = 7. The answer is 7."),
             ("There are 15 trees. Workers plant 6 more. How many trees are there now?", "15 + 6 = 21. The answer is 21.")]


def ex(sid, question, lang="en", exemplars=None):
    return math_example(sid, lang, question, 1.0, "The answer is", exemplars=exemplars)


def follow_up(sid, first, second="Are you sure? Explain again."):
    """A training example whose first user turn is `first`, then a follow-up question and a second answer."""
    return Example(id=f"{sid}-en", source_id=sid, task="math", language="en", messages=[
        {"role": "user", "content": first}, {"role": "assistant", "content": "The answer is 26."},
        {"role": "user", "content": second}, {"role": "assistant", "content": "Yes. The answer is 26."}])


@pytest.mark.parametrize("first, why", [(Q, "same question"), (Q.upper(), "same question after normalising")])
def test_an_eval_question_in_an_earlier_user_turn_is_refused(first, why):
    with pytest.raises(LineageError, match=rf"1 evaluation items .*: t1-en / e1-en \({why}\)"):
        check_lineage([follow_up("t1", first)], [ex("e1", Q), ex("e2", OTHER)])
    with pytest.raises(LineageError, match=r"t2-en / e2-en \(same question\)"):  # in the follow-up turn
        check_lineage([follow_up("t2", "Can you help me with a sum?", OTHER)], [ex("e1", Q), ex("e2", OTHER)])


def test_a_training_example_that_only_shares_a_follow_up_with_eval_data_is_clean():
    assert check_lineage([follow_up("t1", OTHER)], [ex("e1", Q)]).near_duplicates == []


def _dialogue(*turns):
    """API-Bank turns: str for the user, ('AI', text), or (api_name, params, output) for a call."""
    out = []
    for t in turns:
        if isinstance(t, str):
            out.append({"role": "User", "text": t})
        elif t[0] == "AI":
            out.append({"role": "AI", "text": t[1]})
        else:
            out.append({"role": "API", "api_name": t[0], "param_dict": t[1], "result": {"output": t[2]}})
    return "".join(json.dumps(x) + "\n" for x in out)


SCHEMAS = {"GetUserToken": {"name": "GetUserToken", "parameters": {"type": "object", "required": [
    "username", "password"], "properties": {"username": {"type": "str"}, "password": {"type": "str"}}}},
    "AddAlarm": {"name": "AddAlarm", "parameters": {"type": "object", "required": ["token", "time"], "properties": {
        "token": {"type": "str"}, "time": {"type": "str"}}}},
    "DeleteAccount": {"name": "DeleteAccount", "parameters": {"type": "object", "required": ["token"],
                                                              "properties": {"token": {"type": "str"}}}}}
LOGIN = "My username is JohnDoe and my password is pass123."
TOKEN = ("GetUserToken", {"username": "JohnDoe", "password": "pass123"}, {"token": "a9s8d7f6"})


def _apibank(tmp_path, name, **dialogues):
    directory = tmp_path / name
    directory.mkdir()
    for stem, text in dialogues.items():
        (directory / f"{stem}.jsonl").write_text(text)
    return load_apibank(directory, SCHEMAS)


def test_api_bank_dialogues_that_share_only_boilerplate_turns_do_not_clash(tmp_path):
    """Both dialogues' last user turns are the same login line and their token calls return the same result: the
    check refused every such pair as 'same question'."""
    train = _apibank(tmp_path, "tr", alarm=_dialogue("Please set an alarm for 8 am tomorrow.", ("AI", "Log in?"),
                                                     LOGIN, TOKEN, ("AddAlarm", {"token": "a9s8d7f6",
                                                                                 "time": "08:00"}, "ok")))
    evaluation = _apibank(tmp_path, "ev", delete=_dialogue("Can you help me delete my account?", ("AI", "Log in?"),
                                                           LOGIN, TOKEN, ("DeleteAccount", {"token": "a9s8d7f6"},
                                                                          "ok")))
    assert [e.messages[-2]["content"] for e in train[1:]] == [f"API result: {json.dumps(TOKEN[2])}"]
    assert lineage(train, evaluation) == ([], [])


def test_an_api_bank_eval_dialogue_inside_a_longer_training_dialogue_is_refused(tmp_path):
    """The same dialogue, an eval example at its first call and a training example at a later call (its user turns
    and tool results continue): the last user turns differ, the evaluation question is in the training example."""
    text = _dialogue("Please set an alarm for 8 am tomorrow.", ("AI", "Log in?"), LOGIN, TOKEN,
                     "And make it 9 am instead, please.", ("AddAlarm", {"token": "a9s8d7f6", "time": "09:00"}, "ok"))
    examples = _apibank(tmp_path, "d", alarm=text)
    first, later = examples
    with pytest.raises(LineageError, match=r"apibank-alarm-5-en / apibank-alarm-3-en \(same question\)"):
        check_lineage([later], [first])
    # the tool results are not the question: the same user turns after other results are the same question
    other = _apibank(tmp_path, "o", alarm=text.replace("a9s8d7f6", "zzzz"))
    with pytest.raises(LineageError, match=r"\(same question\)"):
        check_lineage([other[1]], [later])


def test_few_shot_exemplars_are_not_the_question():
    """An MGSM few-shot eval example opens with the language's exemplars: its question is its last user turn."""
    evaluation = [ex("gsm8k-test-0", Q, exemplars=EXEMPLARS), ex("gsm8k-test-1", OTHER, exemplars=EXEMPLARS)]
    assert evaluation[0].reference["shots"] == 2 and evaluation[0].exemplar_messages() == 4
    with pytest.raises(LineageError, match=r"t1-en / gsm8k-test-0-en \(same question\)"):
        check_lineage([ex("t1", Q)], evaluation)
    # a training question that is an exemplar is no evaluation item; an edited copy shares as many grams as zero-shot
    assert check_lineage([ex("t2", EXEMPLARS[0][0])], evaluation).near_duplicates == []
    edited = ex("t3", Q.replace("now?", "today?"))
    assert check_lineage([edited], evaluation).near_duplicates == check_lineage([edited], [
        ex("gsm8k-test-0", Q), ex("gsm8k-test-1", OTHER)]).near_duplicates
    assert len(check_lineage([edited], evaluation).near_duplicates) == 1
    # an evaluation question used as a training exemplar was trained on
    with pytest.raises(LineageError, match=r"t4-en / e9-en \(same question\)"):
        check_lineage([ex("t4", OTHER, exemplars=[(Q, "The answer is 25.")])], [ex("e9", Q)])


@pytest.mark.parametrize("shots", [3, -1, "2", True])
def test_a_shots_count_that_does_not_match_the_messages_is_refused_naming_the_example(shots):
    bad = ex("e1", Q, exemplars=EXEMPLARS)
    bad.reference["shots"] = shots
    with pytest.raises(DataFormatError, match=r"'e1-en' reference.shots .* is not the number of \(user, assistant\) "
                                              r"exemplar pairs"):
        check_task_examples([ex("e0", OTHER), bad], "math", "ev.jsonl", "eval")


def test_the_real_api_bank_split_in_two_halves_is_not_refused(tmp_path):
    """level-1-given-desc, its dialogue files alternately in train and eval: 15 evaluation items (25 training
    examples) were refused, all for a shared last user turn; now none is. The other way round, one eval item's
    whole question ('Can you help me change my account password?') opens a training dialogue: refused."""
    source = shared("api-bank", "lv1-lv2-samples", "level-1-given-desc")
    schemas = load_apibank_schemas(shared("api-bank", "all_apis.csv"))
    halves = [tmp_path / "tr", tmp_path / "ev"]
    for i, path in enumerate(sorted(source.glob("*.jsonl"))):
        halves[i % 2].mkdir(exist_ok=True)
        shutil.copy(path, halves[i % 2])
    train, evaluation = (load_apibank(h, schemas) for h in halves)
    clashes, near = lineage(train, evaluation)
    assert (len(train), len(evaluation), clashes, len(near)) == (71, 65, [], 3)
    clashes, _ = lineage(evaluation, train)
    assert [(c[0], c[1]) for c in clashes] == [
        ("apibank-ModifyPassword-ForgotPassword-DeleteAccount-GetUserToken-level-2-2-4-en",
         "apibank-ModifyPassword-RegisterUser-GetUserToken-level-2-1-2-en")]


def test_a_math_eval_item_whose_exemplars_are_written_inline_is_one_question():
    """An MGSM few-shot eval set written as `examples` JSONL without `reference.shots` made its question every user
    turn (exemplars and question): a training copy of the question alone passed as a near-duplicate (probe of the
    new features). A math item is one question, its last user turn."""
    inline = [e.model_copy(update={"reference": {k: v for k, v in e.reference.items() if k != "shots"}})
              for e in (ex("gsm8k-test-0", Q, exemplars=EXEMPLARS), ex("gsm8k-test-1", OTHER, exemplars=EXEMPLARS))]
    assert "shots" not in inline[0].reference and len(inline[0].messages) == 5
    with pytest.raises(LineageError, match=r"t1-en / gsm8k-test-0-en \(same question after normalising\)"):
        check_lineage([ex("t1", Q.upper())], inline)
    assert check_lineage([ex("t2", EXEMPLARS[0][0])], inline).near_duplicates == []  # an exemplar is no eval item
