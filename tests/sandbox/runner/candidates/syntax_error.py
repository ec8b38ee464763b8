class Agent:
    def fit(self, train:
        pass
