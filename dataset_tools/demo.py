"""The embedded default dataset: generated, deterministic, multimodal, with learnable transitions.

Items belong to latent categories; each has a generated title, brand and category name, and a
small PIL-drawn image whose colour and shape depend on its category (so images carry signal).
Sessions follow a category-transition model: the next item's category is mostly the
category's fixed successor, sometimes the same category, rarely random; within a category
items are Zipf-popular, and each item has a favourite follow-up item. A model that learns
transitions (or reads item content) beats popularity, and one that ignores order does not.
Split by session into RecBole benchmark files like every session dataset here.
"""

import json
import random
from pathlib import Path

from dataset_tools.atomic import write_atomic
from dataset_tools.sessions import write_session_splits

CATEGORIES = [
    ("tents", "green", "triangle"), ("bikes", "red", "circle"), ("running shoes", "blue", "square"),
    ("fishing rods", "orange", "line"), ("yoga mats", "purple", "square"),
    ("water bottles", "cyan", "circle"), ("golf clubs", "olive", "line"),
    ("backpacks", "brown", "square"), ("helmets", "yellow", "circle"),
    ("ski goggles", "navy", "triangle"), ("tennis rackets", "lime", "circle"),
    ("climbing ropes", "maroon", "line"), ("kayak paddles", "teal", "line"),
    ("camping stoves", "gray", "square"), ("swim caps", "pink", "circle"),
    ("boxing gloves", "crimson", "triangle"),
]
ADJECTIVES = ["light", "pro", "classic", "compact", "ultra", "trail", "sport", "family",
              "race", "all-season", "deluxe", "junior"]
BRANDS = ["northpeak", "velo", "stride", "aqualine", "summit", "fairway", "kodiak", "zenith"]


def _draw(path, colour, shape, size=64):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    box = (8, 8, size - 8, size - 8)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(size // 2, 8), (size - 8, size - 8), (8, size - 8)], fill=colour)
    else:
        draw.line((8, size - 8, size - 8, 8), fill=colour, width=8)
    image.save(path)


def generate_demo(out_dir, name="demo", items_per_category=150, n_sessions=6000, seed=2020,
                  images=True, max_prefix=50):
    """Write the demo dataset into ``out_dir``; returns the split counts. Same seed, same bytes."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image_dir = out_dir / "images"
    if images:
        image_dir.mkdir(exist_ok=True)

    items, by_category = [], []
    for c, (category, colour, shape) in enumerate(CATEGORIES):
        members = []
        for k in range(items_per_category):
            item_id = f"i{c:02d}{k:03d}"
            brand = rng.choice(BRANDS)
            title = f"{rng.choice(ADJECTIVES)} {brand} {category} {k}"
            image = ""
            if images:
                image = f"images/{item_id}.png"
                _draw(out_dir / image, colour, shape)
            items.append([item_id, title, category, brand, image])
            members.append(item_id)
        by_category.append(members)
    n_cat = len(CATEGORIES)
    successor = {c: (c * 5 + 3) % n_cat for c in range(n_cat)}
    follow_up = {item: rng.choice(by_category[successor[c]])
                 for c, members in enumerate(by_category) for item in members}
    weights = [1.0 / (rank + 1) for rank in range(items_per_category)]

    def draw_item(category):
        return rng.choices(by_category[category], weights)[0]

    sessions = []
    for _ in range(n_sessions):
        length = min(2 + int(rng.expovariate(1 / 3)), 15)
        category = rng.randrange(n_cat)
        session = [draw_item(category)]
        while len(session) < length:
            r = rng.random()
            if r < 0.4:
                nxt = follow_up[session[-1]]
                category = int(nxt[1:3])
            elif r < 0.8:
                category = successor[category]
                nxt = draw_item(category)
            elif r < 0.9:
                nxt = draw_item(category)
            else:
                category = rng.randrange(n_cat)
                nxt = draw_item(category)
            session.append(nxt)
        sessions.append(session)

    write_atomic(out_dir / f"{name}.item",
                 [("item_id", "token"), ("title", "token_seq"), ("category", "token_seq"),
                  ("brand", "token"), ("image", "token")], items)
    write_atomic(out_dir / f"{name}.inter",
                 [("session_id", "token"), ("item_id", "token"), ("timestamp", "float")],
                 [[str(s), item, str(s * 3600 + t * 60)] for s, session in enumerate(sessions)
                  for t, item in enumerate(session)])
    info = {"generator": "dataset_tools.demo", "seed": seed, "items_per_category": items_per_category,
            "categories": n_cat, "images": images}
    counts = write_session_splits(sessions, out_dir, name, seed=seed, max_prefix=max_prefix, info=info)
    (out_dir / "README.md").write_text(
        f"# {name}: generated by `python -m dataset_tools demo`\n\n"
        + (__doc__ or "") + "\n```\n" + json.dumps(counts, indent=1) + "\n```\n")
    return counts
