"""A high-precision keyword layer after DIET (issue 13 item 7).

Some intents are carried by a few unmistakable words: 投诉 / complaint / swearing is a
complaint (item 5), 进度 / "status of my repair" is a progress question (item 4), and text
with no letter, digit or key at all (emoji, "？？", "……") is never yes, a number or a
symptom. When such a pattern matches, this component sets the intent with confidence 1.0
(DIET's ranking follows, halved, so the FallbackClassifier after it does not see an
ambiguity); otherwise DIET's prediction stands. Patterns are plain regexes; a complaint
wins over a progress question ("都一个礼拜了 什么时候修好 我要投诉").
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Pattern, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.training_data.message import Message

# (intent, pattern), in order: the first match wins.
RULES: List[Tuple[Text, Text]] = [
    # "no complaints" is a good rating, not a complaint (U3)
    ("rate_satisfied", r"\bno complaints?\b|没(有|什么|啥)(可|好)?(投诉|抱怨)的?"),
    ("complain", "|".join([
        r"投诉", r"干什么吃的", r"破服务", r"什么破", r"垃圾", r"他妈", r"妈的", r"tmd", r"操你",
        r"找你们的?(领导|经理|负责人|主管|上级)", r"叫你们的?(领导|经理|负责人|主管)",
        r"我要找(领导|经理|负责人|主管)", r"工信部", r"消协", r"消费者协会", r"向上级反映",
        r"怎么(还|到现在)(都|也)?(没|不)(修|来)", r"太不负责", r"不想干了",
        # anger idioms, and a bad verdict addressed at the company rather than a survey score
        r"气死(我|人)", r"气人", r"烦死(了|人)", r"放(我)?鸽子", r"说好的.{0,8}(没|不)", r"答应的.{0,6}(没|不)", r"好意思收",
        r"一直(都)?(不|没)(来|修|人管)", r"拖了(这么|那么|好)?久", r"天天坏", r"搞什么(鬼|名堂)?", r"有没有搞错", r"岂有此理", r"像话吗", r"什么玩意",
        r"报了(好|两|三|四|五|几|多|N)+(次|回|遍)", r"(你们|贵公司|电信|公司)(的|这|这个)?(服务|处理|态度|效率|师傅)?.{0,4}(太差|很差|真差|差劲|不满意|不行|烂)",
    ])),
    ("complain", "|".join([
        r"\bcomplain", r"\bcomplaint", r"\bmanager\b", r"\bsupervisor\b", r"\bdamn",
        r"\bthe hell\b", r"fuck", r"shit", r"ridiculous", r"outrageous", r"unacceptable", r"\buseless\b", r"disgrace",
        r"fed up", r"sick of", r"\bwhy (hasn'?t|has not|isn'?t|is it still not|is it not)\b.{0,30}\b(fixed|repaired)",
        r"never (showed|turned) up", r"for (god|heaven|pete)'?s sake", r"\b(angry|furious|livid|fuming|pathetic|hopeless)\b",
        r"\bnothing (has been|was|gets|got|is being) done\b", r"\byour (boss|superior)\b", r"\bin charge\b", r"\b(rung|called|phoned|reported( it)?|rang) (you )?(\w+ ){0,2}(times|twice)\b",
        r"\b(unhappy|dissatisfied|disappointed|not happy|not satisfied) with (your|the) (service|company|engineers?|staff|people|handling)",
        r"\byour (service|company|engineers?|staff) (is|are) (terrible|awful|bad|the worst|rubbish|hopeless)",
    ])),
    ("ask_progress", "|".join([
        r"进度", r"进展", r"修到哪", r"修(好|完)(了)?(没|吗|么)", r"什么时候(能|才能)?(修好|来修|上门|过来|能好)",
        r"(几时|哪天|啥时候)(上门|来|能好|修好|到)",
        r"(师傅|维修的?人|修理工|工程师|查修员).{0,4}(什么时候|几时|啥时候|哪天)(来|到|上门|过来)", r"派(人|单)了(没|吗)", r"工单", r"申告单",
        r"报(的|了)?(修|障碍|故障).{0,10}(情况|消息|结果|怎么样|有人)",
        r"(修|处理)得怎么样|有(消息|结果)(了)?(没|吗)|到哪一步|(哪天|几时|啥时候|什么时候)(能|才能|可以)?(好|修好|修完|恢复)|"
        r"(之前|前几天|前两天|上次|昨天|上周|上礼拜|上星期|早上|上午|刚才)(我)?(报|申告|反映)(的|了|过)",
    ])),
    ("ask_progress", "|".join([
        r"\bprogress\b", r"\bstatus\b", r"\bany (update|news)\b", r"\bupdate on\b", r"\btrack my\b",
        r"\b(is|has) (my|the) (fault|line|phone|repair|broadband|internet)\b.{0,20}\b(fixed|repaired)",
        r"\bwhen (will|is|are) (the|my|a|your|someone|somebody|anyone) ?(engineer|technician|repairman|repair ?man|repair|fix|line|phone|broadband|internet|coming)\b",
        r"\b(any|an) (news|update|word)\b|\bwhat'?s happening with\b|\bwhat stage\b|\b(fixed|repaired|sorted) yet\b|"
        r"\b(has|have) (the|an|anyone|anybody|someone|somebody) ?(engineer|technician)? (been sent|been assigned|looked at|come|been out)\b|"
        r"\bcheck (on |the status of )?(my|the) (fault|repair|ticket|report)\b|\bmy ticket\b|\bhow long (will|until|till|before)\b",
        r"^\W*(has|have|is|was|did|are|were)\b.{0,30}\b(been )?(fixed|repaired|sorted|resolved|restored)\b",
    ])),
]
# U3 survey ratings, deterministic and negation-aware: 非常满意 / 满意 / 一般 / 不满意 /
# 非常不满意 share almost every character, which DIET cannot tell apart from few examples.
# Checked strongest negation first ("很不满意" before "不满意" before "满意"); a complaint
# (above) still wins. A bare score ("给五分", "four stars") counts only as the whole answer.
_ZH_VERY = r"(非常|很|特别|十分|极其|极|太|相当|超级|超|真的很|实在)"
_ZH_SCORE = r"^\s*(我)?(就|给|打|评|你们|他们|他|她|它|个)*\s*{n}\s*(分|颗星|星)\s*(吧|啦|了|呗)?[\s。.！!]*$"
_EN_VERY = r"(very|extremely|really|totally|completely|highly|so|super|absolutely|thoroughly)"
_EN_SCORE = (r"^\s*(i'?d |i would |i will |i'?ll )?(give (it |you |them )?|rate (it |you )?)(a )?{n}( out of (5|five))?"
             r"( stars?)?[\s.!]*$|^\s*{n}( stars?| out of (5|five))[\s.!]*$")
_EN_NOT = r"(\bnot|n[’']t|\b(dont|wasnt|isnt|arent|werent|didnt|never))"
RATING_RULES: List[Tuple[Text, Text]] = [
    # "通话质量很差" is the line's sound (A8 noise), not a verdict on the repair
    ("symptom_noise", r"通话(质量|声音)|(sound|call|line|voice) quality"),
    ("rate_very_satisfied", r"满分|非常好|特别好|好极了|太好了|^[\W_]*(excellent|outstanding|superb|brilliant|perfect|fantastic|"
        r"couldn'?t be better|top notch|first class|great service|amazing)[\W_]*$"),
    ("rate_very_dissatisfied", r"最差|零分|态度恶劣|差到(极点|家)|^[\W_]*(awful|terrible|horrible|dreadful|appalling|atrocious|"
        r"the worst( service)?|very (bad|poor)|really (bad|poor))[\W_]*$"),
    ("rate_dissatisfied", r"(比较|挺|有点|有些|蛮|还是有点|稍微有点)差|不怎么样|不太好(?!用|使)|^[\W_]*((it was |it's |pretty |quite |rather )?"
        r"(poor|bad|not good|not great|not very good|disappointing|below average|could have been much better))[\W_]*$"),
    ("rate_satisfied", r"^[\W_]*((it was |it's |pretty |quite |really )?(good|pretty good|quite good|very nice|nice|decent|pleasant|happy))[\W_]*$"),
    ("rate_neutral", r"^\s*(还行|凑合|还凑合|过得去|就那样|普普通通|中等|中规中矩|将就|一般化)(吧|啦|了|呗|的)?[\s。.！!]*$"),
    ("rate_neutral", r"^[\W_]*((it was|it's|its|it is|that was|just|pretty|kind of|kinda|fairly|i guess|i'd say|um|uh|well)[\s,]+)+"
        r"(alright|all right|ok|okay|fine|fair|acceptable|passable|average|so-?so|middling|mediocre)[\W_]*$|"
        r"^[\W_]*(fair|passable|acceptable|not bad|could be better|could have been better|nothing special|nothing to write home about)[\W_]*$|"
        r"\b(ok(ay)?-?ish|middle of the road|nothing (great|special|remarkable)|neither here nor there|could(n'?t| have|'?ve) been worse|"
        r"(three|3) out of (five|5)|mixed feelings|about average)\b|"
        r"^[\W_]*(it was |it's |its )?(alright|all right|ok|okay|fine|average|so-?so)[\s,]+(i (suppose|guess)|i'?d say|really|overall)[\W_]*$"),
    ("rate_satisfied", r"没(有|什么|啥)(不满意|可不满意)"),
    ("rate_neutral", r"(说|谈)不上(满意|不满意)|不好不坏|一般般|马马虎虎|^\s*(还|就|感觉|觉得|总的来说)?(算)?一般(吧|啦|了)?[\s。.！!]*$"),
    ("rate_very_dissatisfied", _ZH_VERY + r"(的)?不满(意)?|(一点|一点儿|一丁点)(也|都)不满意|"
        r"(?<!不是)(?<!不算)(非常|很|特别|极其|太)差(劲)?|差劲透|糟糕透|" + _ZH_SCORE.format(n="(一|1|零|0)")),
    ("rate_dissatisfied", r"(不太|不是很|不怎么|不够|不大|有点|有些|有一点|不是太|不是特别|不是非常|不)满意|"
        + _ZH_SCORE.format(n="(二|两|2)")),
    ("rate_very_satisfied", _ZH_VERY + r"满意|满意极了|满意得很|" + _ZH_SCORE.format(n="(五|5)")),
    ("rate_neutral", _ZH_SCORE.format(n="(三|3)")),
    ("rate_satisfied", r"满意|" + _ZH_SCORE.format(n="(四|4)")),
    ("rate_satisfied", r"\bnot (\w+ )?dissatisfied\b|\bno complaints\b"),
    ("rate_very_dissatisfied", r"\b" + _EN_VERY + r" (dissatisfied|unsatisfied|unhappy|disappointed)\b|"
        r"\bnot (satisfied|happy) at all\b|\bnot at all (satisfied|happy)\b|" + _EN_SCORE.format(n="(one|1|zero|0)")),
    ("rate_dissatisfied", r"\b(dissatisfied|unsatisfied|disappointed)\b|" + _EN_NOT
        + r"( \w+){0,2} (satisfied|happy with|pleased with)\b|\bnot (very |really |too |that |so )?(happy|pleased)\b|"
        + _EN_SCORE.format(n="(two|2)")),
    ("rate_very_satisfied", r"\b" + _EN_VERY + r" (satisfied|happy|pleased)\b|" + _EN_SCORE.format(n="(five|5)")),
    ("rate_neutral", r"^\s*(it was |it's |it is |i'd say |i would say |just |kind of |kinda |um |uh )*"
        r"(so-? ?so|average|neutral|mediocre|middling|meh|neither good nor bad|not good not bad)[\s.!]*$|"
        r"\bneither satisfied nor dissatisfied\b|" + _EN_SCORE.format(n="(three|3)")),
    ("rate_satisfied", r"\bsatisfied\b|\b(happy|pleased) with\b|" + _EN_SCORE.format(n="(four|4)")),
]
RULES += RATING_RULES

# Symptoms, repair outcomes and the menu's other choices: a caller's own words for them are
# few and fixed (拨号音, 打不出去, "can't receive calls"), and the direction of a call
# (我打不出去 / 别人打不进来) is exactly what a bag of characters gets wrong. Order matters:
# "still …" is a repair that did not help (U3, and the training data's convention), a
# restoration word is a repair that did, and only then do the symptom words decide.
_STILL_ZH = r"(还是|仍然|依然|依旧|照样)"  # not a bare 还: 还没回来, 还不错
_NOT_EN = r"(not|n[’']t|never|nothing|no)"
OUTCOME_RULES: List[Tuple[Text, Text]] = [
    ("fault_not_fixed", "|".join([
        _STILL_ZH + r"(是)?(不|没|坏|老样子|老问题|一样|那样|有(问题|毛病|杂音)|打不|上不|接不|用不)",
        r"(没|没有|未|还没|还没有|尚未|并没有?)(被|给)?(人)?(修好|修复|恢复|修理|修过|修|处理好|弄好|搞好|解决)",
        r"(一点|一直|根本|压根)(儿)?(都|也)?没(好|修|变)|还(是)?(不能|没法|不可以)(用|打|上网)",
        r"故障(还|依然|仍然|依旧)在|修了(也|还是)?(没用|不行|白修)|(跟|和)没修一(个)?样|没人来(修)?|根本没(修|人来|好)",
    ])),
    ("fault_not_fixed", "|".join([
        r"\bstill\b.{0,25}\b(" + _NOT_EN + r"|broken|dead|down|the same|faulty|bad|playing up|same problem|problem|issue|fault|noise|static)",
        r"\b(hasn'?t|haven'?t|has not|have not|wasn'?t|was not|isn'?t|is not|not)( been| yet| really| quite| properly)* (fixed|repaired|sorted|resolved|restored|solved)\b",
        r"\bnot (working|solved|fixed|resolved|repaired|right) yet\b",
        r"\bno(body| one) (came|showed|turned up|has come|fixed)\b|\bsame (as before|problem|old)\b",
    ])),
    # A symptom that is gone: "杂音没有了", "the noise has stopped" (before the symptom words).
    ("fault_fixed", r"(杂音|噪音|电流声|问题|故障|毛病)(已经|都|也)?(没有了|没了|消失了|不见了)|"
        r"\b(noise|static|problem|fault|issue|crackl\w*|buzz\w*|hum\w*|echo)\b.{0,10}\b(is |'s |has |have )?(gone|stopped|disappeared)\b|\bno (more|longer any) (noise|static|problems?|issues?)\b"),
]
FIXED_RULES: List[Tuple[Text, Text]] = [
    ("fault_fixed", r"(故障|问题|毛病)(已经|都)?(排除|解决)了|(?<![没未不])(修好了|修复了|已经修好|已修复|恢复(正常)?了|(都|也|已经|现在|全)(都)?(正常|好)了|能用了|可以用了|能打(电话)?了|"
        r"打得通了|能上网了|网(也)?通了|(弄|搞|整)好了)(?!.{0,3}(吗|么|没|[?？]))"),
    ("fault_fixed", r"(?<!stopped )(?<!stop )\b(working|works|work) (again|fine|now|normally|ok|okay|properly|perfectly)\b|"
        r"\b(it'?s|is|been|got|they|he|she|was|have|has|all) (fixed|repaired|sorted|resolved|restored)\b|"
        r"\b(is |'s |are )?back (on|up|to normal|online)\b|\b(internet|line|phone|broadband|wi-?fi|dial ?tone|tone|signal|service)'?s back\b|\bproblem (is |'s )?(gone|solved)\b|\ball good now\b|"
        r"\b(the )?(repair|fix|engineer|technician) (worked|did the trick|sorted it)\b|\beverything'?s (fine|ok|okay|good|working) now\b"),
]
SYMPTOM_RULES: List[Tuple[Text, Text]] = [
    # Parts of the set, not the line: the screen, the keys, caller ID (A8 "other").
    ("symptom_other", r"屏幕|显示屏|(按)?键(失灵|坏|不灵|没反应|不好使)|来电(号码)?不显示|来电显示(不|没|坏|有问题)|"
        r"\b(display|screen|caller ?id)\b|\b(buttons?|keys|keypad)\b.{0,15}\b(don'?t|do not|won'?t|doesn'?t|broken|stuck|dead|not working)"),
]
# Both directions named, one of them fine: the broken one decides.
TWO_WAY_RULES: List[Tuple[Text, Text]] = [
    ("symptom_cannot_receive", r"(能|可以)(打|拨)(出去|出|电话)?.{0,6}(不能|没法|无法|接不)(接|到|进)|只能打不能接|能打不能接|"
        r"打出去(没问题|可以|正常).{0,8}(打不进|接不|进不来)"),
    ("symptom_cannot_call_out", r"(能|可以)(接|听)(电话|到)?.{0,6}(不能|没法|无法)(打|拨)|只能接不能打|能接不能打|"
        r"(打进来|接电话)(没问题|可以|正常).{0,8}(打不出|拨不出|出不去)"),
    ("symptom_cannot_receive", r"\bcan (make|call out|dial out|ring out|phone out)\b.{0,25}\b(can'?t|cannot|not|never|don'?t)\b.{0,12}(receive|get|come in|reach|incoming|ring)"
        r"|\b(making|outgoing) calls? (is |are )?(fine|ok|works?)\b.{0,30}(incoming|receiv|ring)"),
    ("symptom_cannot_call_out", r"\bcan (receive|get|take) (calls|them)\b.{0,25}\b(can'?t|cannot|not|never|don'?t)\b"
        r"|\b(receiving|incoming) calls? (is |are )?(fine|ok|works?)\b|\b(people|they) can (still )?(reach|call|ring) me\b"
        r"|(making|outgoing) calls? (doesn'?t|does not|don'?t|won'?t|fail)"),
]
SYMPTOM_RULES = SYMPTOM_RULES + [
    ("symptom_no_dial_tone", r"(没|无|听不[到见]|没了)(有)?(任何)?(的)?(拨号|波号|嘟嘟|嘟的声|嘟声)|"
        r"(拿起|提起|摘机|摘起|拿起来|提起来|摘下|提起话筒|拿起话筒).{0,6}(没|无|听不[到见]|不响|啥也|什么(声音)?都|一片安静|静悄悄|哑)"),
    ("symptom_cannot_call_out", r"(拨完|按完|拨了号|拨号后|号码拨|拨出去|打出去).{0,6}(没反应|不通|就断|断了|没声|没动静|占线|忙音)|"
        r"(打|拨)给(别人|人家|谁|外面|儿子|女儿|家人|朋友|亲戚|我儿子|我女儿).{0,4}(打不通|不通|占线|没反应|忙音|断)"),
    ("symptom_cannot_receive", "|".join([
        r"(打不进|拨不进|打不到我|打不过来|进不来|接不到|接不了|收不到来电|没有?来电|(电话|铃)(声)?(都|也)?(不|没)响|(不|没)响铃|听不到铃|来电不响)",
        r"(?<![打拨给])(别人|人家|他们|朋友|家人|亲戚|儿子|女儿|老伴|孩子|谁|外面|外边)(都|也)?(打|拨)(我|给我|我家|进来|过来|电话给我|家里)?.{0,6}(打不通|不通|占线|没人接|没反应|打不进|进不来|无法接通|是忙音|忙音|关机|空号)",
        r"(?<!我)(打|拨)(给)?我(家)?(的)?(电话|座机|家里)?(都|也|老是|总是)?(打不通|不通|占线|没反应|忙音|空号)",
        r"打进来(没|不)|没(有)?人(能|可以)?(打(给我|进来|得进|得通)|打我)|(电话|铃)(.{0,6})(没|不会)响(过)?",
    ])),
    ("symptom_cannot_call_out", "|".join([
        r"呼叫.{0,6}(不成功|失败|不通)|外面的电话打不|(打不出|拨不出|打不了电话|不能打电话|没法打电话|打出去(没|不|就断|断|占线|忙音)|拨出去(没|不|就断)|外拨不|往外打不|出不去|呼不出)",
        r"(我|自己)(给|往)?(别人|人家|外面|谁|家人|儿子|女儿)?(打|拨)(电话|出去|别人|人家|给别人|谁)?.{0,6}(都)?(打不通|不通|占线|没反应|忙音|断)",
    ])),
    ("symptom_cannot_receive", r"\b(can'?t|cannot|can not|unable to|not able to|don'?t|doesn'?t|won'?t|never) (receive|get|take|answer)( any| my)? (incoming |any )?(calls|phone calls|rings)\b"
        r"|\b(nobody|no one|people|they|callers|friends|family|others|other people|anyone|anybody|someone|somebody|my \w+)\b.{0,20}\b(can'?t|cannot|couldn'?t|unable to|not able to|never|don'?t) (get through|reach|call|ring|phone)\b"
        r"|\bwhen (they|people|someone|somebody|anyone|callers|others) (call|ring|phone|try)|\b(hasn'?t|has not|haven'?t|never|doesn'?t|does not|won'?t) (rung|ring)\b|\bstays? silent\b|\brings? out\b|\b(incoming|inbound) calls?\b|\b(doesn'?t|does not|won'?t|never) ring\b|\bno calls? (come|coming|get) (in|through)\b"
        r"|\b(engaged|busy)( signal| tone)?\b.{0,30}\b(call|ring)s? me\b|\bcall(s|ing)? me\b.{0,30}\b(engaged|busy|nothing|dead|rings out|no answer)"),
    ("symptom_cannot_call_out", r"\b(can'?t|cannot|can not|unable to|not able to|won'?t let me|doesn'?t let me) (make|call|dial|ring|phone)( any| a| out| anyone| anybody| people| my \w+)*( calls?| out)?\b"
        r"|\b(outgoing|outbound) calls?\b|\bcalls? (don'?t|do not|won'?t|never) (connect|go through|go out)\b|\b(dial|ring) out\b.{0,20}\b(fail|nothing|doesn'?t|won'?t|can'?t)"
        r"|\bwhen i (dial|call|ring)\b.{0,30}\b(nothing|fail|cut off|busy|engaged|doesn'?t|won'?t|dead)"
        r"|\b(calling|dial(l)?ing|ringing|phoning)( \w+){0,3} out\b.{0,30}\b(impossible|error|fail|doesn'?t|won'?t|can'?t|not)"),
    ("symptom_no_dial_tone", r"(电话|话机|座机|线路|听筒|话筒|电话线)(里|机)?(好像)?.{0,4}(没|无)(有)?(任何|一点)?(声|音|动静)|哑(了|巴)|死了一样|没(有)?动静|一点(声音|动静)都没|摘机无音"),
    ("symptom_no_dial_tone", r"\b(no|not any|without( a)?|can'?t hear (a|the|any)|don'?t hear (a|the|any)|lost (the|my)|there'?s no) ?(dial ?tone|tone)\b"
        r"|\b(line|phone|landline|handset)( is|'s)? (completely |totally |just )?(dead|silent)\b|\bdead (line|phone)\b"
        r"|\b(pick|lift)(ed|s)? (it|the (phone|handset|receiver)) up\b.{0,25}\b(nothing|silence|no sound|dead)"
        r"|\b(pick|lift)(ed|s)? up the (phone|handset|receiver)\b.{0,25}\b(nothing|silence|no sound|dead)|\bno sound\b|\bhear nothing\b"
        r"|\bwhen i (pick|lift)( it)? up\b.{0,25}\b(nothing|silence|no sound|dead|quiet|can'?t hear)|\bnothing on the line\b"
        r"|\b(line|phone)( has|'s| is)? (gone|went) (completely |totally |dead )?(quiet|silent|dead)\b|\b(totally|completely) dead\b"),
    ("symptom_broadband_down", "|".join([
        r"(上不了|上不去|不能上|没法上|无法上|连不上)(网|宽带|互联网)|断网|没(有)?网|网(络)?(断|掉|坏|没了)|掉线|网页(打|开)不",
        r"(宽带|网络|网速|光猫|光纤|路由器?|网线|wi-?fi|无线网|互联网|上网)(.{0,6})(断|掉|连不上|上不了|不通|用不了|不能用|不行|很慢|太慢|特别慢|慢|卡|坏|故障|出问题|有问题|没信号|红灯|灯|不亮|闪|没反应)",
    ])),
    ("symptom_broadband_down", r"\b(internet|broadband|wi-?fi|modem|router|network|connection|online|web ?pages?|fibre|fiber)\b.{0,25}"
        r"\b(down|dead|out|not working|doesn'?t work|won'?t|can'?t|cannot|stopped|slow|keeps dropping|drops?|dropping|disconnect|red|blinking|flashing|no signal|off|broken|fail|gone)"
        r"|\b(no|lost( the| my)?|without|can'?t get|cannot get|can'?t go|can'?t connect to( the)?) (internet|broadband|wi-?fi|connection|online)\b"),
    ("symptom_noise", r"(听得到|听到|串进|串到)(了)?别人(的)?(讲话|说话|电话|声音)|通话(不清楚|不清晰)|杂音|噪音|噪声|沙沙|串音|串线|电流声|滋滋|嗡嗡|吱吱|回音|回声|听不清|咔咔|嘶嘶|刺啦|呲呲|断断续续|有(别人|其他人|陌生人)(的)?(说话|声音|在说话)"),
    ("symptom_noise", r"nois|static|crackl|buzz|\bhum(ming)?\b|hiss|\becho|cross-?talk|interference|\b(can'?t|cannot) hear (them|the other|clearly|properly|well)"
        r"|\bhear (other|other people|strangers|someone else)|\bother people'?s (voices|conversations?|calls)|\bcuts? (in and )?out\b|\bbreaking up\b|\b(faint|muffled|crackly|fuzzy|distorted)\b"),
    ("symptom_other", r"(其他|其它|别的|另外的?)(的)?(故障|问题|毛病)|(以上|上面)?(这些)?都不是|不是(上面|以上)(这些|的)|时好时坏|时有时无|有时(候)?好有时(候)?(不好|坏)|"
        r"话机(摔|掉)|电话线杆|线杆|(挖|砸|刮|扯)断|(电话线|线杆|杆子|电线杆).{0,6}(断|倒|歪)|说不(上来|清楚|好)|讲不清(楚)?|"
        r"不知道(怎么|咋)(说|回事)|描述不(了|出)|不是(那|这|上面)几(种|个)|怪(怪的|得很)|有点怪|(有点|老出|老是出|总出)毛病|不(太|大)好(用|使)|一会儿好一会儿坏"),
    ("symptom_other", r"\bnone of (those|these|them|the above)\b|\bsomething else (is )?(wrong|the matter|broken)\b|"
        r"\b(another|a different|some other|other) (problem|issue|fault)\b|\bon and off\b|\bintermittent|\bsometimes (works|it works|fine)|"
        r"\b(hard to (explain|describe)|can'?t (describe|explain)|not sure what'?s wrong|don'?t know what'?s wrong|acting up|playing up|"
        r"it'?s (weird|strange|odd|complicated))\b|\b(pole|cable|wire)s?\b.{0,15}\b(down|cut|damaged|snapped|fell)|\bline outside\b"),
]
# The menu's and every prompt's other choices, by their unmistakable words.
CHOICE_RULES: List[Tuple[Text, Text]] = [
    # Asking what the bot is, not asking for a person (issue 13: never a yes or a handoff).
    ("out_of_scope", r"你是(不是)?(真人|人|机器人?|电脑|人工)|是真人吗|是不是(真人|机器)|\b(are|r) (you|u) (a |an )?(real |actual )?(person|human|robot|machine|bot|computer)\b|"
        r"\b(am i|are we) (talking|speaking) (to|with) (a |an )?(real |actual )?(machine|robot|bot|computer|person|human)\b|\bis this (a )?(robot|machine|recording|bot)\b"),
    ("deny", r"(不用|不要|不需要|不想|别)(再)?(留言|留话|留个?言|留了)|留言(就)?(不用|算了|不要|不必)"),
    ("deny", r"\b(don'?t|do not|no need to) (transfer|connect|put) me\b|(不要|不用|不需要|别|不想)(转)?(接)?(人工|真人|客服|接线员)|\b(no|don'?t( need| want)?|not) (a |an )?(human|operator|agent|person)\b"),
    ("request_human", r"(跟|和|找)(个)?(人|活人|真人)(说|讲|聊|来听|来接)|不想跟机器|不要(跟)?机器|你们的人呢|\bcustomer service\b|人工|真人|接线员|话务员|座席|坐席|活人|(找|转|接|叫)(你们)?(的)?(个)?(客服|工作人员)|客服(人员|小姐|来接)|"
        r"\b(human|real person|operator|live agent|an agent|the agent|representative|staff member|employee|speak to (a |an |some)(one|person|body))\b|"
        r"\b(talk|speak|chat) (to|with) (someone|somebody|a person|a real|an actual|a live|a human|a man|a woman)\b|"
        r"\b(put me through|transfer me|connect me)\b(?!.{0,12}\b(english|chinese|mandarin)\b)|\b(a|an) (real|actual|live) (human|person|one)\b|\bperson i can (talk|speak)"),
    ("choose_chinese", r"(听不懂|不懂|不会说?|不会讲)(英语|英文)|\b(don'?t|do not|can'?t|cannot) (speak|understand) english\b|no english"),
    ("choose_english", r"(听不懂|不懂|不会说?|不会讲)(中文|普通话|汉语)|\b(don'?t|do not|can'?t|cannot) (speak|understand) (chinese|mandarin)\b"),
    ("choose_chinese", r"普通话|中文|国语|汉语|华语|中国话|中闻|\b(chinese|mandarin|putonghua)\b"),
    ("choose_english", r"英语|英文|应语|\benglish\b"),
    ("do_not_call", r"以后(都)?(别|不要|不用)(再)?(打|来|给我打|回访|联系)|别再(打|来|给我打)|(别|不要|不用|请勿|不许|不想)(再)?(给我)?(打|来|接)(电话|回访)?(来|给我|了)|(别|不要|不用)(再)?(回访|打扰|联系)(我)?|不接受(电话)?回访|回访名单|拉黑|"
        r"\b(don'?t|do not|stop|never|no more)( \w+){0,2} (call|ring|phone|contact|bother)(ing)?\b.{0,15}\b(me|us|again|anymore|any more|this number)\b|"
        r"\b(take|remove|delete) (me|my number|my name)\b.{0,12}\b(off|from)\b|\b(quit|stop) (calling|ringing|phoning)\b|"
        r"\bdon'?t want (you|anyone|people) (calling|ringing|phoning)|\bopt(ing)? out\b|\bunsubscribe\b|\bleave me alone\b|"
        r"\b(no|don'?t want( any)?|not interested in) (more )?(survey|follow-?up|feedback) calls?\b|\bdon'?t want to be (called|contacted)\b|"
        r"\b(don'?t|do not|stop|never|no more) (call|ring|phone|contact|bother)(ing)?( me| us| this number| again)|\bremove (me|my number)\b|\btake me off\b|\bno more (survey )?calls\b|\bdo not call\b|\bdon'?t want (any )?(survey|more) calls\b"),
    ("leave_message", r"(跟|给|和)(修理工|师傅|维修(的)?(人员|师傅|员)?|修的人|修电话的|查修员|工程师).{0,4}(说|讲|交代|带)|\b(ask|tell) the (technician|engineer|repairman|repair guy)\b|留言|留个言|留话|留个话|留句话|留个口信|带个话|带句话|捎句话|转告|\b(leave|record|pass|give|send) (a |an )?(voice |quick |short )?(message|note|voicemail)\b|\btell the (technician|engineer|repairman|repair guy)\b|\bmessage (for |to )?the (technician|engineer|repairman|repair guy)\b"),
    ("retry", r"改(一下)?(号码|电话)|重新|重来|重输|重录|重打|重拨|从新|从头|再(来|输|录)一(遍|次)|^再来(吧)?$|我再说一遍|\b(re-?enter|re-?record|redo|start (over|again)|try again|do it over|one more time|again please|(enter|type|record) it again)\b"),
    ("other_services", r"升级|收费|开通|装(一条|一部|个)?新|(其他|其它|别的)(服务|业务)|\b(terminate|cancel) my (service|contract|line|account)\b|"
        r"\bmoving (house|home)\b|\bmove my line\b|\bother (business|services?)\b|话费|缴费|交费|充值|余额|账单|欠费|资费|套餐|发票|积分|过户|移机|新装|装(个|一部)?(新)?(电话|宽带)|提速|续费|停机保号|改名|销户|"
        r"\b(bill|billing|balance|invoice|top ?up|tariff|plan|package|upgrade|new (line|connection)|install(ation)?|move my (line|phone)|how much do i owe|pay(ment)?)\b"),
]
def _whole(words: Text, particles: Text = "") -> Text:
    """The whole utterance is one or more of ``words`` (each with an optional particle),
    punctuation and spaces aside: "对对对", "是的 没错", "yes yes right"."""
    one = r"(?:" + words + r")" + (r"(?:" + particles + r")?" if particles else "")
    return r"^[\W_]*" + _FILLERS + one + r"(?:[\W_]*" + one + r"){0,3}[\W_]*$"  # "ok ok ok ok ok" is no answer


_FILLERS = r"(?:(?:oh|ah|um+|uh+|er+m?|well|so|那|呃|额|哦|噢|啊)[\W_]*)*"
# Short answers, as a whole: 嗯 and 恩 stay yes here (the forms treat a lone 嗯 as hesitation).
_ZH_PARTICLES = r"的|啊|呀|滴|哒|嘞|呐|哦|吧|噢|嘛"
_KEY_EN = r"one|two|three|four|five|six|seven|eight|nine|zero|oh|hash|pound|star|the hash key|the pound key|[0-9#*]"
ANSWER_RULES: List[Tuple[Text, Text]] = [
    # A key said as a word, alone: "按一", "井号", "press one", "option 3" (the forms read the key).
    ("dtmf", r"^[\W_]*(我)?(按|按键|按了|选|要)?(一|二|三|四|五|六|七|八|九|零|幺|两|井号|星号|[0-9０-９#＃*])(号)?(键)?[\W_]*$"),
    ("dtmf", r"^[\W_]*(press|key|option|number|button|pick|choose|select|i'?ll (take|go with)|i (press|pick|choose))?\s*(" + _KEY_EN + r")"
        r"( key| button)?( please)?[\W_]*$"),
    ("affirm", _whole(r"嗯|恩|对|是|好|行|可以|没错|没有错|没得错|一点没错|确认|确定|正确|没问题|对头|需要|要|就是这个|是这个|对了|那好吧|好嘞|嗯呐",
                      _ZH_PARTICLES)),
    ("affirm", _whole(r"yes|yeah|yep|yup|yea|ok|okay|sure|correct|right|exactly|absolutely|certainly|affirmative|confirm(?:ed)?|"
                      r"of course|uh huh|that'?s right|that'?s correct|that is correct|that'?s it|spot on|bang on|go ahead|"
                      r"sounds good|please|it is|i do|i would|i will|yes i would|that'?s the one|sure thing|all correct|that sounds (?:fine|good|right)|"
                      r"that'?s my number|that'?s the number|fine|alright|all right|indeed|definitely|precisely|i confirm")),
    ("deny", _whole(r"不|不是|不对|不要|不用|不需要|不行|错了|错的|错误|不正确|否|不了|不必|没有|搞错了|弄错了|你说错了|你听错了|读错了|"
                    r"不用了|不要了|不需要了|不必了|不得行|莫得|用不着|错咯|错啦", _ZH_PARTICLES)),
    ("deny", _whole(r"no|nope|nah|negative|wrong|incorrect|not right|not correct|no thanks|no thank you|not needed|no need|"
                    r"that'?s wrong|that'?s not right|that'?s not it|that'?s incorrect|it isn'?t|it'?s wrong|not that one|not quite|not that|"
                    r"that isn'?t (?:it|right|correct|the one|my number)|(?:that|the) number'?s wrong|wrong number|i'?m fine|i'?m ok|"
                    r"don'?t bother|i don'?t want (?:it|one|that)|not really|i don'?t think so|i don'?t|no way|definitely not|absolutely not")),
    ("greet", _whole(r"喂|你好|您好|哈喽|哈罗|嗨|早上好|下午好|晚上好|中午好|早|你们好|在吗|有人吗|在不在|听得到吗|听得见吗", r"啊|呀|哈")),
    ("greet", _whole(r"hello|hi|hey|hiya|howdy|good (?:morning|afternoon|evening|day)|morning|afternoon|evening|greetings|yo|there|"
                     r"to you|everyone|anybody|anyone|anybody there|anyone there|is anyone there|is anybody there|can you hear me|"
                     r"(?:anyone|anybody|someone) on the line|are you there")),
    ("goodbye", _whole(r"没了|没有了|没事了|没别的了|没有别的了|没有其他的?了|就这些(了)?|就这样(吧)?|好了没事了", r"啊|呀|哈|谢谢")),
    ("greet", _whole(r"how are you|sup|what'?s up|hi how are you|hello how are you")),
    ("goodbye", r"\b(have a (good|nice|great) (day|one|evening|night)|talk (to you )?later|i'?ll (hang up|go now|let you go)|see ya|take care)\b"),
    ("goodbye", r"再见|拜拜|再会|^[\W_]*(好了)?(我)?(先)?挂(了|电话了)(啊|哈|哦)?[\W_]*$|^[\W_]*(我要)?(退出|结束)|\b(bye|goodbye|bye-bye)\b|"
                r"^[\W_]*(ok |okay |no )?(quit|exit|hang up|end (the )?call|that'?s (all|everything|it)|i'?m (done|finished)|nothing (else|more))\b"),
]
RULES += TWO_WAY_RULES + OUTCOME_RULES + SYMPTOM_RULES + FIXED_RULES + CHOICE_RULES + ANSWER_RULES

# Spaces between Chinese characters are how a recogniser or a slow typist splits words.
_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
# Hesitation alone is never an answer (never "yes"): 呃, 额, uh, um, erm, hmm.
HESITATION = re.compile(r"(?i)^\s*(呃+|额+|uh+|um+|erm*|hmm+|mm+)[\s.…。,，!?？！]*$")
# No letter, digit, CJK character or key (# *): emoji, punctuation, nothing.
NOTHING_SAID = re.compile(r"[\w#*]")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class KeywordIntentClassifier(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"enabled": True}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.enabled = bool(config.get("enabled", True))
        self.rules: List[Tuple[Text, Pattern[Text]]] = [(i, re.compile(p, re.IGNORECASE)) for i, p in RULES]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "KeywordIntentClassifier":
        return cls(config)

    def match(self, text: Text) -> Optional[Text]:
        if not text or text.startswith("/"):
            return None
        if not NOTHING_SAID.search(text) or HESITATION.match(text):
            return "out_of_scope"
        text = _CJK_SPACE.sub("", text)
        for intent, pattern in self.rules:
            if pattern.search(text):
                return intent
        return None

    def process(self, messages: List[Message]) -> List[Message]:
        if not self.enabled:
            return messages
        for message in messages:
            intent = self.match(message.get("text") or "")
            if intent is None:
                continue
            ranking = [
                {**r, "confidence": float(r.get("confidence") or 0.0) / 2}
                for r in message.get("intent_ranking") or []
                if r.get("name") != intent
            ]
            message.set("intent", {"name": intent, "confidence": 1.0}, add_to_output=True)
            message.set("intent_ranking", [{"name": intent, "confidence": 1.0}, *ranking], add_to_output=True)
        return messages
