"""What finding the one face costs: how the second-face pass tiles a photo (four detector runs for a
4:3 landscape, six for a 3:4 portrait), and a face decoded twice is detected once."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from shine_mcp.models import ImageRejected, analyze, cores, pipeline
from shine_mcp.models.face import INPUT_SIZE, Face, detect_faces
from shine_mcp.models.pipeline import SECOND_PASS_OVERLAP, SECOND_PASS_TILE, second_pass_tiles

from .conftest import encode

# 4:3 and 3:4 sizes a photo takes after intake's reduction, including ones where the tile side rounds
# down by a pixel (232x309: a 185 px tile, 124 px to cover with a 123.2 px step).
FOUR_THREE = [(232, 309), (309, 232), (261, 347), (333, 444), (750, 1000), (756, 1008), (3024, 4032)]


@pytest.mark.parametrize("size", FOUR_THREE)
def test_a_four_by_three_photo_is_searched_in_two_by_two_tiles_and_a_portrait_in_two_by_three(
    size: tuple[int, int],
) -> None:
    """Tiles are 0.6 of the frame's width, so a face a tenth of the width is 21 px of the detector's
    input in a portrait too (it was 16 px, and mostly missed, when tiles followed the long side)."""
    width, height = size
    assert len(second_pass_tiles(width, height)) == (4 if width > height else 6)
    assert max(r - left for left, _, r, _ in second_pass_tiles(width, height)) == round(
        SECOND_PASS_TILE * width
    )


@pytest.mark.parametrize("size", [*FOUR_THREE, (512, 512), (1080, 1920), (4000, 1000), (300, 300)])
def test_the_tiles_cover_the_photo_and_neighbours_overlap_by_a_fifth_of_the_width(
    size: tuple[int, int],
) -> None:
    width, height = size
    tiles = second_pass_tiles(width, height)
    side = min(round(SECOND_PASS_TILE * width), height)
    for left, top, right, bottom in tiles:
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        assert max(right - left, bottom - top) == side
    lefts = sorted({t[0] for t in tiles})
    tops = sorted({t[1] for t in tiles})
    for starts, length in ((lefts, width), (tops, height)):
        assert starts[0] == 0 and min(starts[-1] + side, length) == length
        for a, b in zip(starts, starts[1:], strict=False):
            # whole pixels may shorten the overlap by a fraction of a pixel per step, never by more
            assert a + side - b >= min(SECOND_PASS_OVERLAP * width, side / 2) - 2, (size, starts)


def test_a_small_face_decoded_again_larger_is_found_on_the_first_decode_only(
    hopper: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detector sees every decode shrunk to 128 px: the larger decode reuses the first detection
    instead of paying a detector run and a resize of megapixels to find the same face again."""
    # a face ~24 % of the width: ~175 px in the first, half-scale decode, under the 190 px the crop wants
    frame = Image.new("RGB", (1440, 1440), (120, 112, 104))
    frame.paste(hopper.resize((900, 1055)), (270, 200))
    seen: list[tuple[int, int]] = []

    def counting(image: Image.Image, *args: float) -> list[Face]:
        seen.append(image.size)
        return detect_faces(image, *args)

    monkeypatch.setattr(pipeline, "detect_faces", counting)
    result = analyze(encode(frame, quality=92))
    assert result.image.analysed_scale == 1.0  # decoded a second time, whole
    first_decode = (720, 720)  # half scale: the smallest JPEG draft with a 720 px short side
    assert seen and all(w <= first_decode[0] and h <= first_decode[1] for w, h in seen), seen
    box = result.face.box
    assert 270 < box.x < box.x + box.width < 270 + 900  # the face where it was pasted, in full pixels


def test_the_second_face_pass_shrinks_the_frame_once_and_shows_the_detector_tiles_of_its_input_size(
    hopper: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six tiles of a 750 x 1000 portrait are cut from one copy shrunk so a tile is 128 px, instead of
    each 450 px tile being resized on its own (six resizes cost as much as the six detector runs)."""
    frame = Image.new("RGB", (750, 1000), (120, 112, 104))
    frame.paste(hopper.resize((600, 703)), (75, 150))
    main = detect_faces(frame)[0]
    seen: list[tuple[int, int]] = []

    def counting(image: Image.Image, *args: float) -> list[Face]:
        seen.append(image.size)
        return detect_faces(image, *args)

    monkeypatch.setattr(pipeline, "detect_faces", counting)
    assert pipeline.other_faces(frame, main) == []
    assert seen == [(INPUT_SIZE, INPUT_SIZE)] * 6


@pytest.mark.parametrize("corner", [(0.03, 0.03), (0.85, 0.05), (0.04, 0.86), (0.86, 0.87), (0.45, 0.45)])
def test_a_face_found_in_a_tile_is_placed_where_it_is_in_the_frame(
    hopper: Image.Image, corner: tuple[float, float]
) -> None:
    """A face 12 % of the frame's width, pasted anywhere in a portrait, comes back with its box on it."""
    frame = Image.new("RGB", (750, 1000), (120, 112, 104))
    hx, hy, hw, _ = detect_faces(hopper)[0].box
    scale = 0.12 * frame.width / hw
    small = hopper.resize((round(hopper.width * scale), round(hopper.height * scale)))
    left = round(corner[0] * (frame.width - small.width))
    top = round(corner[1] * (frame.height - small.height))
    frame.paste(small, (left, top))
    found = pipeline.other_faces(frame, None)
    assert len(found) == 1
    x, y, w, _ = found[0].box
    expected = (left + hx * scale, top + hy * scale, hw * scale)
    # the detector's box jitters by ~10 % of a face's width between a face's sizes and positions
    assert abs(x - expected[0]) < 0.15 * expected[2] and abs(y - expected[1]) < 0.15 * expected[2], (x, y)
    assert 0.85 * expected[2] < w < 1.15 * expected[2]


def two_people(hopper: Image.Image) -> bytes:
    """A portrait with a second face a tenth of the frame's width in a corner: too small for the
    whole-frame pass (13 px of its input), found only by the tiles."""
    frame = Image.new("RGB", (750, 1000), (120, 112, 104))
    frame.paste(hopper.resize((420, 492)), (165, 300))
    _, _, face_width, _ = detect_faces(hopper)[0].box
    scale = 0.11 * frame.width / face_width
    frame.paste(hopper.resize((round(hopper.width * scale), round(hopper.height * scale))), (20, 20))
    return encode(frame, quality=92)


def one_person(hopper: Image.Image) -> bytes:
    alone = Image.new("RGB", (750, 1000), (120, 112, 104))
    alone.paste(hopper.resize((420, 492)), (165, 300))
    return encode(alone, quality=92)


@pytest.fixture
def tile_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread each tiled search ran on, with two cores to analyse on whatever this machine has."""
    threads: list[threading.Thread] = []
    search = pipeline.tile_faces

    def recording(*args: object) -> list[Face]:
        threads.append(threading.current_thread())
        return search(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "tile_faces", recording)
    monkeypatch.setattr(cores, "ANALYSIS", cores.Cores(2))
    return threads


def test_the_tiles_search_for_a_second_person_beside_the_measuring(
    hopper: Image.Image, tile_threads: list[threading.Thread]
) -> None:
    """On two cores the tiles' six detector runs overlap the measuring instead of adding to it, and the
    second person they find is still refused."""
    with pytest.raises(ImageRejected) as caught:
        analyze(two_people(hopper))
    assert caught.value.code == "multiple_faces"
    assert tile_threads and all(t is not threading.current_thread() for t in tile_threads)


def test_with_every_core_analysing_the_tiles_run_on_the_analysing_thread_and_say_the_same(
    hopper: Image.Image, tile_threads: list[threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the extra thread would only compete with other analyses for the cores: the search then
    runs inline, with the same outcome, and every core taken is given back, refusals included."""
    photo = one_person(hopper)
    on_a_spare_core = analyze(photo)
    assert tile_threads[-1] is not threading.current_thread()
    monkeypatch.setattr(cores, "ANALYSIS", cores.Cores(1))
    inline = analyze(photo)
    assert tile_threads[-1] is threading.current_thread()
    assert inline.model_dump() == on_a_spare_core.model_dump()
    with pytest.raises(ImageRejected) as caught:
        analyze(two_people(hopper))
    assert caught.value.code == "multiple_faces"
    assert tile_threads[-1] is threading.current_thread()
    assert cores.ANALYSIS.in_use == 0
    held = cores.Cores(2)
    monkeypatch.setattr(cores, "ANALYSIS", held)
    started, done = threading.Event(), threading.Event()

    def another_shoppers_analysis() -> None:
        with held.busy():
            started.set()
            done.wait(30)

    other = threading.Thread(target=another_shoppers_analysis)
    other.start()
    try:
        started.wait(30)
        analyze(photo)
    finally:
        done.set()
        other.join()
    assert tile_threads[-1] is threading.current_thread()
    assert held.in_use == 0


def test_a_process_out_of_threads_still_analyses_and_gives_the_core_back(
    hopper: Image.Image, tile_threads: list[threading.Thread], monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoThreadToBeHad(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(pipeline.threading, "Thread", NoThreadToBeHad)
    assert analyze(one_person(hopper)).face is not None
    assert tile_threads[-1] is threading.current_thread()
    assert cores.ANALYSIS.in_use == 0


def test_a_second_person_is_said_before_any_other_reason_to_refuse(
    hopper: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search for a second person finishes after the measuring: a refusal the measuring raised
    meanwhile (here a drawing) must not hide that the photo shows two people, which is what to fix first."""

    def refusing(*_: object) -> None:
        raise ImageRejected("drawing", "this looks like a drawing")

    monkeypatch.setattr(pipeline, "measured", refusing)
    with pytest.raises(ImageRejected) as caught:
        analyze(two_people(hopper))
    assert caught.value.code == "multiple_faces"
    with pytest.raises(ImageRejected) as caught:
        analyze(one_person(hopper))
    assert caught.value.code == "drawing"


def test_a_face_cut_off_beside_a_second_person_is_refused_for_the_second_person(hopper: Image.Image) -> None:
    """A face cut off at the edge waits for the tiles running beside: with a second person in the photo,
    "2 faces found" is what to fix first; alone, the cut-off face is said."""
    cut = Image.new("RGB", (750, 1000), (120, 112, 104))
    cut.paste(hopper.resize((420, 492)), (-200, 300))
    with pytest.raises(ImageRejected) as caught:
        analyze(encode(cut, quality=92))
    assert caught.value.code == "face_cut_off"
    _, _, face_width, _ = detect_faces(hopper)[0].box
    scale = 0.11 * cut.width / face_width
    cut.paste(hopper.resize((round(hopper.width * scale), round(hopper.height * scale))), (600, 20))
    with pytest.raises(ImageRejected) as caught:
        analyze(encode(cut, quality=92))
    assert caught.value.code == "multiple_faces"
