"""Build the course's sample data (``data/train.txt``, ``data/dev.tsv``) with one seeded command::

    python data/build_sample.py --seed 0

Everything here was written for this course; nothing comes from LCQMC or another data set. The
sentences are everyday questions of the kind people ask on a Q&A site, made from *intents* (one
question asked several ways, e.g. "how do I cook X") and *fillers* (the X: a dish, a device, a
symptom...). The hand-written sentences and pairs of the first sample (``data/handwritten/``) are kept.

``dev.tsv`` has four columns, ``a<TAB>b<TAB>label<TAB>group``; the groups, as in LCQMC, are

* ``paraphrase`` (label 1): the same question asked two ways that share many characters;
* ``low_overlap_paraphrase`` (1): the same question in other words (few shared characters);
* ``near_miss`` (0): two questions that share most characters but ask different things (头疼怎么办 /
  牙疼怎么办; 吃X有什么好处 / X吃多了有什么坏处);
* ``unrelated`` (0): two questions on different topics.

``train.txt`` holds other sentences of the same intents (no dev sentence is in it), plus the
hand-written ones, shuffled.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------- the fillers
FOOD = ("鸡蛋 蛋黄 蛋白 牛奶 香蕉 苹果 西瓜 葡萄 榴莲 芒果 猕猴桃 核桃 花生 红薯 土豆 豆腐 海带 菠菜 芹菜 黄瓜 "
        "西红柿 螃蟹 虾 牛肉 羊肉 猪肝 蜂蜜 红枣 绿豆 燕麦 酸奶 咖啡 绿茶 巧克力 辣椒 大蒜 生姜 木耳 山药 玉米 "
        "南瓜 荔枝 橙子 柚子 樱桃 草莓 菠萝 桂圆 板栗 腰果 杏仁 黑芝麻 紫薯 胡萝卜 白萝卜 茄子 韭菜 洋葱 "
        "鸭蛋 鹌鹑蛋 冰淇淋 方便面 豆浆").split()
DISH = ("红烧肉 酸菜鱼 宫保鸡丁 麻婆豆腐 糖醋排骨 可乐鸡翅 西红柿炒鸡蛋 鱼香肉丝 水煮鱼 回锅肉 蛋炒饭 饺子 "
        "包子 馒头 月饼 粽子 汤圆 蛋糕 披萨 红烧鱼 凉拌黄瓜 酸辣土豆丝 小龙虾 火锅底料 牛肉面 炸酱面 "
        "葱油饼 南瓜粥 银耳汤 排骨汤").split()
DEVICE = ("手机 电脑 笔记本电脑 平板 冰箱 洗衣机 空调 电视 热水器 路由器 打印机 微波炉 电饭煲 耳机 相机 "
          "充电宝 投影仪 扫地机器人 吸尘器 电风扇 油烟机 净水器 加湿器 电动车 键盘 鼠标 显示器 音箱").split()
SYMPTOM = ("头疼 牙疼 胃疼 失眠 咳嗽 发烧 感冒 便秘 腰疼 脱发 口腔溃疡 嗓子疼 流鼻血 打嗝 落枕 晕车 "
           "过敏 长痘 黑眼圈 打呼噜 拉肚子 耳鸣 鼻塞 头晕 手脚冰凉 腿抽筋 眼睛干涩 肩膀酸痛 心慌 湿疹").split()
CITY = ("北京 上海 广州 深圳 杭州 成都 重庆 西安 南京 武汉 长沙 厦门 青岛 大连 昆明 三亚 桂林 苏州 "
        "天津 哈尔滨 拉萨 丽江 洛阳 济南 郑州 合肥 南宁 贵阳 兰州 乌鲁木齐").split()
PET = "猫 狗 仓鼠 兔子 鹦鹉 金鱼 乌龟 泰迪 金毛 哈士奇 柯基 布偶猫 英短 蓝猫 柴犬 边牧 八哥 龙猫".split()
APP = "微信 支付宝 QQ 淘宝 抖音 微博 京东 美团 百度网盘 钉钉 拼多多 快手 小红书 高德地图 网易云音乐".split()
SKILL = "英语 数学 物理 化学 日语 编程 钢琴 吉他 书法 画画 游泳 摄影 韩语 吉他弹唱 素描 围棋 会计 法语".split()
PLANT = "绿萝 多肉 吊兰 仙人掌 发财树 君子兰 月季 茉莉花 栀子花 文竹 富贵竹 薄荷 兰花 虎皮兰 芦荟".split()
DOCUMENT = "身份证 护照 驾驶证 户口本 港澳通行证 社保卡 营业执照 结婚证 学生证 银行卡 居住证 房产证".split()

# ----------------------------------------------------------------------------------- the intents
# Each intent: the filler list and the ways of asking; the first phrasings share many characters,
# the last ones few (low-overlap paraphrases). Every phrasing of an intent means the same thing.
INTENTS = {
    "food_harm": (FOOD, ["{x}吃多了有什么坏处", "{x}吃太多有什么坏处", "{x}吃多了对身体不好吗",
                         "{x}可以多吃吗", "过量食用{x}会怎样"]),
    "food_benefit": (FOOD, ["吃{x}有什么好处", "多吃{x}有什么好处", "吃{x}对身体有好处吗",
                            "{x}的营养价值高吗", "{x}的功效与作用"]),
    "food_daily": (FOOD, ["{x}每天吃多少合适", "每天吃多少{x}合适", "一天吃多少{x}比较好", "{x}的适宜食用量是多少"]),
    "food_night": (FOOD, ["晚上吃{x}好吗", "晚上可以吃{x}吗", "晚上吃{x}会不会长胖", "睡前能不能来点{x}"]),
    "food_morning": (FOOD, ["早上吃{x}好吗", "早上可以吃{x}吗", "早上空腹吃{x}行不行", "起床后先吃{x}合适吗"]),
    "food_pregnant": (FOOD, ["孕妇可以吃{x}吗", "孕妇能吃{x}吗", "怀孕了能不能吃{x}", "孕期食用{x}安全吗"]),
    "food_keep": (FOOD, ["{x}怎么保存", "{x}怎么保存比较好", "{x}放冰箱能放几天", "如何储存{x}不容易坏"]),
    "food_pick": (FOOD, ["怎么挑选{x}", "怎么挑选新鲜的{x}", "{x}怎么挑", "买{x}时怎样选到好的"]),
    "dish_cook": (DISH, ["{x}怎么做好吃", "{x}怎么做才好吃", "{x}的家常做法", "在家如何做{x}",
                         "想学做{x}有什么窍门"]),
    "dish_fat": (DISH, ["{x}热量高吗", "{x}的热量高不高", "吃{x}会胖吗", "减肥期间能吃{x}吗"]),
    "dish_need": (DISH, ["做{x}需要哪些材料", "做{x}需要什么材料", "{x}要准备什么食材", "{x}的配料有哪些"]),
    "device_broken": (DEVICE, ["{x}坏了怎么办", "{x}坏了怎么修", "{x}坏了该怎么处理", "{x}出故障了如何解决",
                               "{x}突然用不了是什么原因"]),
    "device_buy": (DEVICE, ["哪个牌子的{x}好", "哪个牌子的{x}比较好", "买什么牌子的{x}好", "{x}选哪个品牌",
                            "推荐一款性价比高的{x}"]),
    "device_noise": (DEVICE, ["{x}噪音很大怎么办", "{x}噪音大怎么办", "{x}声音特别响是什么原因", "{x}有异响怎么回事"]),
    "device_power": (DEVICE, ["{x}费电吗", "{x}费不费电", "{x}一个月用多少电", "{x}的耗电量大不大"]),
    "device_life": (DEVICE, ["{x}能用几年", "{x}一般能用几年", "{x}的使用寿命有多长", "{x}多久需要换新的"]),
    "device_clean": (DEVICE, ["{x}怎么清洗", "{x}怎么清洗干净", "如何清理{x}", "{x}脏了怎么弄干净"]),
    "symptom_cure": (SYMPTOM, ["{x}怎么办", "{x}了怎么办", "{x}怎么缓解", "{x}有什么好办法", "怎样才能快速治好{x}"]),
    "symptom_cause": (SYMPTOM, ["{x}是什么原因", "{x}是什么原因引起的", "为什么会{x}", "经常{x}是怎么回事"]),
    "symptom_drug": (SYMPTOM, ["{x}吃什么药", "{x}吃什么药好", "{x}吃什么药好得快", "{x}应该用哪种药"]),
    "symptom_diet": (SYMPTOM, ["{x}吃什么好", "{x}吃什么食物好", "{x}的时候饮食要注意什么", "{x}适合喝点什么汤"]),
    "symptom_dept": (SYMPTOM, ["{x}挂什么科", "{x}应该挂什么科", "{x}去医院看哪个科", "{x}要找哪个科室的医生"]),
    "city_fun": (CITY, ["{x}有什么好玩的地方", "{x}有哪些好玩的地方", "去{x}旅游去哪里玩", "{x}有哪些必去的景点",
                        "到{x}玩有什么推荐"]),
    "city_food": (CITY, ["{x}有什么好吃的", "{x}有哪些好吃的", "{x}的特色美食有哪些", "去{x}必吃的小吃是什么"]),
    "city_winter": (CITY, ["{x}冬天冷不冷", "{x}冬天冷吗", "{x}冬天的气温有多低", "冬季去{x}要穿羽绒服吗"]),
    "city_summer": (CITY, ["{x}夏天热不热", "{x}夏天热吗", "{x}夏天的气温有多高", "夏季去{x}会不会很闷"]),
    "city_season": (CITY, ["什么时候去{x}最好", "什么时候去{x}旅游最好", "几月份去{x}合适", "去{x}的最佳季节是哪个月"]),
    "city_house": (CITY, ["{x}的房价多少", "{x}的房价是多少", "{x}房子多少钱一平", "在{x}买套房要花多少钱"]),
    "pet_feed": (PET, ["{x}吃什么好", "{x}吃什么比较好", "{x}平时喂什么", "养{x}应该喂哪些食物"]),
    "pet_sick": (PET, ["{x}不吃东西怎么办", "{x}不吃东西了怎么办", "{x}突然不吃饭是怎么回事", "{x}没有食欲怎么回事"]),
    "pet_life": (PET, ["{x}能活多少年", "{x}能活几年", "{x}的寿命一般多长", "{x}一般能活几岁"]),
    "pet_bath": (PET, ["{x}多久洗一次澡", "{x}多长时间洗一次澡", "多久给{x}洗澡合适", "{x}需要经常洗澡吗"]),
    "app_password": (APP, ["{x}密码忘了怎么办", "{x}的密码忘了怎么办", "{x}忘记密码怎么找回", "{x}登录密码想不起来了"]),
    "app_delete": (APP, ["{x}怎么注销账号", "{x}账号怎么注销", "如何注销{x}账户", "{x}账号能永久删除吗"]),
    "app_register": (APP, ["{x}怎么注册账号", "{x}账号怎么注册", "如何注册{x}账户", "怎样申请一个{x}号"]),
    "app_cache": (APP, ["{x}缓存怎么清理", "{x}的缓存怎么清理", "怎么清除{x}的缓存", "{x}占的空间太大怎么办"]),
    "app_history": (APP, ["{x}聊天记录怎么恢复", "{x}的聊天记录怎么恢复", "{x}删除的聊天记录能找回吗",
                          "误删了{x}的消息还能找回来吗"]),
    "skill_learn": (SKILL, ["怎样学好{x}", "怎么才能学好{x}", "学好{x}有什么方法", "{x}水平怎样快速提高"]),
    "skill_self": (SKILL, ["自学{x}难吗", "自学{x}难不难", "{x}自学能学会吗", "零基础能不能自己学{x}"]),
    "skill_book": (SKILL, ["学{x}看什么书好", "学{x}看什么书比较好", "{x}入门推荐什么教材", "有哪些适合新手的{x}书"]),
    "skill_time": (SKILL, ["学{x}要多长时间", "学{x}需要多长时间", "{x}多久能学会", "掌握{x}大概得几年"]),
    "plant_water": (PLANT, ["{x}多久浇一次水", "{x}多长时间浇一次水", "{x}浇水的频率是多少", "{x}需要天天浇水吗"]),
    "plant_yellow": (PLANT, ["{x}叶子发黄怎么办", "{x}的叶子发黄怎么办", "{x}黄叶是什么原因", "{x}叶片变黄了怎么救"]),
    "plant_grow": (PLANT, ["{x}怎么养", "{x}怎么养才长得好", "{x}的养殖方法", "养{x}要注意哪些事项"]),
    "doc_lost": (DOCUMENT, ["{x}丢了怎么办", "{x}丢了该怎么办", "{x}丢失了如何补办", "{x}找不到了去哪里重新办"]),
    "doc_apply": (DOCUMENT, ["{x}怎么办理", "{x}要怎么办理", "办{x}需要什么材料", "第一次申请{x}要带哪些东西"]),
    "doc_time": (DOCUMENT, ["{x}多久能办好", "{x}多长时间能办好", "办{x}需要几天", "{x}从申请到拿到要等多久"]),
    "route_time": (CITY, ["{x}到{y}坐高铁要多久", "{x}到{y}坐高铁要多长时间", "从{x}去{y}高铁几个小时",
                          "{x}至{y}的动车得坐多久"]),
    "route_fare": (CITY, ["{x}到{y}的机票多少钱", "{x}到{y}的机票要多少钱", "从{x}飞{y}票价多少",
                          "{x}飞往{y}的航班贵不贵"]),
}

# Intent pairs that ask different things with many shared characters (near misses for the same filler).
OPPOSITES = [("food_harm", "food_benefit"), ("food_night", "food_morning"), ("symptom_drug", "symptom_diet"),
             ("symptom_cure", "symptom_cause"), ("app_delete", "app_register"), ("city_winter", "city_summer"),
             ("city_fun", "city_food"), ("pet_feed", "pet_sick"), ("doc_lost", "doc_apply"),
             ("doc_apply", "doc_time"), ("skill_learn", "skill_self"), ("route_time", "route_fare"),
             ("device_broken", "device_noise"), ("pet_life", "pet_bath"), ("plant_water", "plant_yellow")]

GROUPS = ("paraphrase", "low_overlap_paraphrase", "near_miss", "unrelated")


def jaccard(a: str, b: str) -> float:
    """Character overlap of two sentences (the course's baseline)."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / max(1, len(sa | sb))


def fill(phrasing: str, x: str, y: str = "") -> str:
    return phrasing.format(x=x, y=y)


def fillers(intent: str, rng: random.Random) -> tuple[str, str]:
    """A random filler (two distinct cities for the routes)."""
    pool = INTENTS[intent][0]
    x = rng.choice(pool)
    y = rng.choice([c for c in pool if c != x]) if intent.startswith("route") else ""
    return x, y


def make_pair(group: str, rng: random.Random) -> tuple[str, str, int]:
    """One generated dev pair of ``group``."""
    if group in ("paraphrase", "low_overlap_paraphrase"):
        intent = rng.choice(list(INTENTS))
        phrasings = INTENTS[intent][1]
        x, y = fillers(intent, rng)
        candidates = [(fill(p, x, y), fill(q, x, y)) for p, q in itertools.combinations(phrasings, 2)]
        low = [c for c in candidates if jaccard(*c) < 0.4]
        high = [c for c in candidates if jaccard(*c) >= 0.5]
        a, b = rng.choice((low or candidates) if group == "low_overlap_paraphrase" else (high or candidates))
        return a, b, 1
    if group == "near_miss":
        if rng.random() < 0.5:  # the same question about a different filler: 头疼怎么办 / 牙疼怎么办
            intent = rng.choice(list(INTENTS))
            p = rng.choice(INTENTS[intent][1][:3])
            x, y = fillers(intent, rng)
            pool = INTENTS[intent][0]
            if intent.startswith("route"):  # same origin, another destination
                x2, y2 = x, rng.choice([c for c in pool if c not in (x, y)])
            else:
                x2, y2 = rng.choice([c for c in pool if c != x]), ""
            return fill(p, x, y), fill(p, x2, y2), 0
        first, second = rng.choice(OPPOSITES)  # another question about the same filler
        x, y = fillers(first, rng)
        i = rng.randrange(3)
        return fill(INTENTS[first][1][i], x, y), fill(INTENTS[second][1][i], x, y), 0
    a_intent, b_intent = rng.sample(list(INTENTS), 2)
    while INTENTS[a_intent][0] is INTENTS[b_intent][0]:
        b_intent = rng.choice(list(INTENTS))
    a = fill(rng.choice(INTENTS[a_intent][1]), *fillers(a_intent, rng))
    b = fill(rng.choice(INTENTS[b_intent][1]), *fillers(b_intent, rng))
    return a, b, 0


def handwritten_group(a: str, b: str, label: int) -> str:
    """The group of a pair of the first, hand-written sample (it had the same four kinds, unlabelled)."""
    if label == 1:
        return "paraphrase" if jaccard(a, b) >= 0.3 else "low_overlap_paraphrase"
    return "near_miss" if jaccard(a, b) >= 0.3 else "unrelated"


def generated_sentences(intent: str) -> list[str]:
    """Every sentence of one intent (each phrasing with each filler)."""
    pool, phrasings = INTENTS[intent]
    if intent.startswith("route"):
        return [fill(p, x, y) for p in phrasings for x in pool for y in pool if x != y]
    return [fill(p, x) for p in phrasings for x in pool]


def train_sentences(n: int, exclude: set[str], rng: random.Random) -> list[str]:
    """``n`` generated sentences (none of ``exclude``), taken from the intents in turn, so that each
    intent has about the same share (the small ones all of theirs)."""
    pools = []
    for intent in INTENTS:
        pool = [s for s in generated_sentences(intent) if s not in exclude]
        rng.shuffle(pool)
        pools.append(pool)
    out = []
    for round_ in itertools.zip_longest(*pools):
        out += [s for s in round_ if s is not None]
        if len(out) >= n:
            break
    return out[:n]


def build(seed: int, counts: dict[str, int], n_train: int) -> tuple[list[tuple], list[str]]:
    rng = random.Random(seed)
    hand_pairs = []
    with open(os.path.join(HERE, "handwritten", "dev.tsv"), encoding="utf-8") as f:
        for line in f:
            a, b, label = line.rstrip("\n").split("\t")
            hand_pairs.append((a, b, int(label), handwritten_group(a, b, int(label))))
    with open(os.path.join(HERE, "handwritten", "train.txt"), encoding="utf-8") as f:
        hand_train = [line.strip() for line in f if line.strip()]

    pairs, seen_pairs = list(hand_pairs), {(a, b) for a, b, *_ in hand_pairs}
    for group, n in counts.items():
        made = 0
        while made < n:
            a, b, label = make_pair(group, rng)
            if a == b or (a, b) in seen_pairs or (b, a) in seen_pairs:
                continue
            seen_pairs.add((a, b))
            pairs.append((a, b, label, group))
            made += 1
    rng.shuffle(pairs)

    dev_sentences = {s for a, b, *_ in pairs for s in (a, b)}
    generated = train_sentences(n_train, dev_sentences, rng)
    train = list(dict.fromkeys([s for s in hand_train if s not in dev_sentences] + generated))
    rng.shuffle(train)
    return pairs, train


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build data/train.txt and data/dev.tsv (seeded).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--paraphrase", type=int, default=330)
    parser.add_argument("--low_overlap_paraphrase", type=int, default=150)
    parser.add_argument("--near_miss", type=int, default=200)
    parser.add_argument("--unrelated", type=int, default=260)
    parser.add_argument("--generated_train", type=int, default=6000,
                        help="generated sentences in train.txt (besides the hand-written ones)")
    args = parser.parse_args(argv)
    counts = {g: getattr(args, g) for g in GROUPS}
    pairs, train = build(args.seed, counts, args.generated_train)
    with open(os.path.join(args.out, "dev.tsv"), "w", encoding="utf-8") as f:
        f.writelines(f"{a}\t{b}\t{label}\t{group}\n" for a, b, label, group in pairs)
    with open(os.path.join(args.out, "train.txt"), "w", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in train)
    positives = sum(p[2] for p in pairs)
    print(f"dev.tsv: {len(pairs)} pairs ({positives} positive), train.txt: {len(train)} sentences")


if __name__ == "__main__":
    main()
